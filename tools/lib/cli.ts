/**
 * What every `ehc-edge` subcommand shares: exit codes, config loading, talking to the running appliance
 * over the HIS port, progress lines on stderr, and small table output.
 *
 * Exit codes: 0 ok · 1 a failure was found (unhealthy component, broken audit chain …) · 2 usage or
 * configuration error (bad flag, unreadable config, refused key) · 3 appliance unreachable.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, configPathFrom, loadConfig } from '../../src/config/load.ts';
import type { ApplianceConfig } from '../../src/config/types.ts';

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, UNREACHABLE: 3 } as const;

/** An error that ends a subcommand with a given exit code and a one-line message. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function loadCliConfig(argv: string[]): ApplianceConfig {
  try {
    return loadConfig(configPathFrom(argv, process.env));
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(EXIT.USAGE, err.message);
    throw err;
  }
}

/** Base URL of the running appliance's HIS port (a wildcard listen address is reached on loopback). */
export function hisUrl(config: ApplianceConfig): string {
  const scheme = config.his.tls ? 'https' : 'http';
  const listen = config.his.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  return `${scheme}://${listen}`;
}

/** EHC_EDGE_API_KEY, else the first plain API key of the config (an sm3: entry cannot be used to call). */
export function hisKey(config: ApplianceConfig): string | undefined {
  return process.env.EHC_EDGE_API_KEY ?? config.his.apiKeys.find((k) => !k.startsWith('sm3:'));
}

export interface HisTarget {
  url: string;
  key: string | undefined;
}

/**
 * The HIS port of the appliance: --url / --key, else the config's his.listen (a wildcard address reached
 * on loopback) and EHC_EDGE_API_KEY (or EHC_HIS_KEY) or the first plain his.apiKeys entry.
 */
export function hisTarget(config: ApplianceConfig | undefined, opts: { url?: string; key?: string }): HisTarget {
  const url = opts.url?.replace(/\/$/, '') ?? (config ? hisUrl(config) : undefined);
  if (!url) throw new CliError(EXIT.USAGE, 'no appliance address: give --url or a config');
  const key = opts.key ?? process.env.EHC_EDGE_API_KEY ?? process.env.EHC_HIS_KEY ?? (config ? hisKey(config) : undefined);
  return { url, key };
}

/** GET a JSON document from the appliance; maps network failures to exit 3 and refused keys to exit 2. */
export async function hisGet<T>(target: HisTarget, pathAndQuery: string, timeoutMs = 5000): Promise<T> {
  let res: Response;
  try {
    res = await fetch(target.url + pathAndQuery, {
      headers: { Accept: 'application/json', ...(target.key ? { Authorization: `Bearer ${target.key}` } : {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const c = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
    const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).name;
    throw new CliError(EXIT.UNREACHABLE, `appliance unreachable at ${target.url} (${cause})`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.status === 401 || res.status === 403) {
    throw new CliError(EXIT.USAGE, `the appliance refused the key (HTTP ${res.status})${target.key ? '' : ': no key; set EHC_EDGE_API_KEY or --key'}`);
  }
  if (!res.ok || body === undefined) {
    const msg = (body as { ret_msg?: string } | undefined)?.ret_msg ?? text.slice(0, 200);
    throw new CliError(res.status >= 500 ? EXIT.FAILURE : EXIT.USAGE, `GET ${pathAndQuery}: HTTP ${res.status} ${msg}`);
  }
  return body as T;
}

/** Progress lines on stderr (so --json stdout stays clean); overwritten in place on a terminal. */
export function progress(enabled: boolean): { update(text: string): void; done(text?: string): void } {
  const tty = process.stderr.isTTY;
  let last = 0;
  let pending: string | null = null;
  let shown = false;
  return {
    update(text) {
      if (!enabled) return;
      const now = Date.now();
      if (tty) {
        process.stderr.write(`\r\x1b[K${text}`);
        shown = true;
      } else if (last === 0 || now - last >= 1000) {
        process.stderr.write(text + '\n');
        pending = null;
        last = now;
        return;
      } else {
        pending = text; // throttled: shown by done() if nothing newer is
      }
      last = now;
    },
    done(text) {
      if (!enabled) return;
      if (tty && shown) process.stderr.write('\r\x1b[K');
      if (!tty && pending) process.stderr.write(pending + '\n');
      if (text) process.stderr.write(text + '\n');
    },
  };
}

export function table(rows: Array<Array<string | number | null | undefined>>, header: string[]): string {
  const cell = (v: unknown) => (v === undefined || v === null || v === '' ? '-' : String(v));
  const width = (s: string) => Array.from(s).reduce((n, ch) => n + (/[\u1100-\uffff]/.test(ch) ? 2 : 1), 0);
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(cell(r[i])))));
  const line = (vals: string[]) => vals.map((v, i) => v + ' '.repeat(Math.max(0, widths[i]! - width(v)))).join('  ').trimEnd();
  return [line(header), ...rows.map((r) => line(header.map((_, i) => cell(r[i]))))].join('\n');
}

/** Run a subcommand's main and turn a CliError (or anything else) into its exit code and a message. */
export async function runCommand(name: string, work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`ehc-edge ${name}: ${err.message}`);
      return err.exitCode;
    }
    if ((err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      console.error(`ehc-edge ${name}: ${(err as Error).message}`);
      return EXIT.USAGE;
    }
    console.error(`ehc-edge ${name}: ${(err as Error).stack ?? String(err)}`);
    return EXIT.FAILURE;
  }
}

/** True when the module at `metaUrl` is the script node was started with (also through a symlinked bin). */
export function isEntry(metaUrl: string): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

/** Common flags of every subcommand, for node:util parseArgs. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  config: { type: 'string' },
  url: { type: 'string' },
  key: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;
