/**
 * Operator tool for scanners.
 *   scanners list   [--config PATH] [--local]      scanners of the running appliance (GET /v1/scanners);
 *                                                  with --local, or when it is not running, what this
 *                                                  machine has plugged in, with ids and STM numbers
 *   scanners inject TEXT [--scanner NAME] [--station S] [--config PATH]
 *                                                  a scan from a virtual scanner (POST /v1/scans/inject)
 * The HIS URL comes from the config's his.listen; the key from EHC_HIS_KEY or the config's first
 * plain his.apiKeys entry. `--url` and `--key` override both.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { configPathFrom, loadConfig } from '../src/config/load.ts';
import type { ApplianceConfig } from '../src/config/types.ts';
import { discover } from '../drivers/registry.ts';
import type { ApplianceState } from '../src/store/state.ts';

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

function hisUrl(config: ApplianceConfig, argv: string[]): string {
  const url = flag(argv, '--url');
  if (url) return url.replace(/\/$/, '');
  return `${config.his.tls ? 'https' : 'http'}://${config.his.listen}`;
}

function hisKey(config: ApplianceConfig, argv: string[]): string | undefined {
  return flag(argv, '--key') ?? process.env.EHC_HIS_KEY ?? config.his.apiKeys.find((k) => !k.startsWith('sm3:'));
}

function table(rows: Array<Record<string, unknown>>, cols: string[]): string {
  const cell = (v: unknown) => (v === undefined || v === null ? '-' : typeof v === 'number' && v > 255 ? '0x' + v.toString(16).padStart(4, '0') : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

const COLS = ['scannerId', 'driver', 'state', 'path', 'model', 'station', 'name', 'termId'];

async function listLocal(config: ApplianceConfig): Promise<Array<Record<string, unknown>>> {
  let terminals: ApplianceState['terminals'] = {};
  try {
    terminals = (JSON.parse(readFileSync(path.join(config.stateDir, 'state.json'), 'utf8')) as ApplianceState).terminals ?? {};
  } catch {
    // no state yet: numbers are allocated when the appliance first sees a scanner
  }
  const found = await discover({ scanners: config.scanners, autoDetect: config.scannerAutoDetect });
  return found.map((d) => ({
    scannerId: d.scannerId,
    driver: d.device.driver,
    state: d.device.driver === 'hid-keyboard' ? 'refused (keyboard mode)' : 'present',
    path: d.device.path,
    model: d.device.model,
    station: d.config?.station,
    name: d.config?.name,
    termId: d.config?.stmCode ?? terminals[d.scannerId]?.stm ?? '(allocated on first open)',
  }));
}

export async function main(argv: string[], out: (s: string) => void = console.log): Promise<number> {
  const [cmd, ...rest] = argv;
  const config = loadConfig(configPathFrom(rest, process.env));
  if (cmd === 'list') {
    if (!rest.includes('--local')) {
      try {
        const key = hisKey(config, rest);
        const res = await fetch(`${hisUrl(config, rest)}/v1/scanners`, { headers: key ? { Authorization: `Bearer ${key}` } : {}, signal: AbortSignal.timeout(3000) });
        if (!res.ok) {
          out(`appliance answered ${res.status}: ${await res.text()}`);
          return 1;
        }
        const body = (await res.json()) as { scanners: Array<Record<string, unknown>> };
        out(body.scanners.length ? table(body.scanners, COLS) : 'no scanners (plug one in, or check scannerAutoDetect / scanners in the config)');
        return 0;
      } catch (err) {
        out(`appliance not reachable (${(err as Error).message}); detected on this machine:`);
      }
    }
    const rows = await listLocal(config);
    out(rows.length ? table(rows, COLS) : 'no supported scanners detected');
    return 0;
  }
  if (cmd === 'inject') {
    const text = rest[0];
    if (!text || text.startsWith('--')) {
      out('usage: scanners inject TEXT [--scanner NAME] [--station STATION] [--config PATH] [--url URL] [--key KEY]');
      return 2;
    }
    const key = hisKey(config, rest);
    const body: Record<string, string> = { text };
    const scanner = flag(rest, '--scanner');
    const station = flag(rest, '--station');
    if (scanner) body.scanner = scanner;
    if (station) body.station = station;
    const res = await fetch(`${hisUrl(config, rest)}/v1/scans/inject`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
    out(`${res.status} ${await res.text()}`);
    return res.ok ? 0 : 1;
  }
  out('usage: scanners list [--local] | scanners inject TEXT [--scanner NAME] [--station S]   (both take --config PATH, --url, --key)');
  return 2;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
