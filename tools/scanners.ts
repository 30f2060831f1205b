/**
 * `ehc-edge scanners list | inject`: the scanners of the running appliance (GET /v1/scanners: configured
 * ones are listed even when absent) or, with --local, what this machine has plugged in with ids and STM
 * numbers; `inject` sends a scan from a virtual scanner (POST /v1/scans/inject).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ApplianceConfig } from '../src/config/schema.ts';
import { discover } from '../drivers/registry.ts';
import type { ApplianceState } from '../src/store/state.ts';
import { act, cliLang, defineCommand, defineGroup, EXIT, hisGet, hisTarget, isEntry, loadCliConfig, runCli, table, tr, type CommonOptions, type Lang, unreachable } from './lib/cli.ts';

function cell(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : typeof v === 'number' && v > 255 ? '0x' + v.toString(16).padStart(4, '0') : String(v);
}

function scannerTable(rows: Array<Record<string, unknown>>, lang: Lang = 'en'): string {
  const zh = lang === 'zh';
  const state = (v: unknown) => (zh && typeof v === 'string' ? (STATES_ZH[v] ?? v) : cell(v));
  return table(rows.map((r) => COLS.map((c) => (c === 'state' ? state(r[c]) : cell(r[c])))), zh ? COLS_ZH : COLS);
}

const COLS = ['scannerId', 'driver', 'state', 'path', 'model', 'station', 'name', 'termId'];
const COLS_ZH = ['扫码器 ID', '驱动', '状态', '设备', '型号', '工位', '名称', '识读终端号'];
const STATES_ZH: Record<string, string> = { open: '就绪', closed: '已断开', refused: '已拒绝（键盘模式）', 'refused (keyboard mode)': '已拒绝（键盘模式）', failed: '故障', absent: '未插入', present: '已插入' };

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

export function command(out: (line: string) => void = (line) => console.log(line)) {
  const list = defineCommand('list', tr('设备的扫码器（已配置的即使不在也列出），或用 --local 列出本机的', 'scanners of the appliance (configured ones even when absent), or of this machine with --local')).option('--local', tr('本机插着的扫码器（设备无需运行）', 'what this machine has plugged in (the appliance need not run)'));
  act<CommonOptions & { local?: boolean }>(list, async (values) => {
    const lang = cliLang();
    if (!values.local) {
      const body = await hisGet<{ scanners: Array<Record<string, unknown>> }>(hisTarget(values.url ? undefined : loadCliConfig(values), values), '/v1/scanners');
      if (values.json) out(JSON.stringify(body.scanners, null, 2));
      else out(body.scanners.length ? scannerTable(body.scanners, lang) : lang === 'zh' ? '无扫码器（请插入扫码器，或检查配置中的 scannerAutoDetect / scanners）' : 'no scanners (plug one in, or check scannerAutoDetect / scanners in the config)');
      return body.scanners.some((x) => x.configured && x.state !== 'open') ? EXIT.FAILURE : EXIT.OK;
    }
    const rows = await listLocal(loadCliConfig(values));
    if (values.json) out(JSON.stringify(rows, null, 2));
    else out(rows.length ? scannerTable(rows, lang) : lang === 'zh' ? '未检测到支持的扫码器' : 'no supported scanners detected');
    return EXIT.OK;
  });
  const inject = defineCommand('inject', tr('模拟一台虚拟扫码器扫码（POST /v1/scans/inject）', 'a scan from a virtual scanner (POST /v1/scans/inject)'))
    .argument('<text>', tr('扫到的文本', 'the scanned text'))
    .option('--scanner <name>', tr('上报的扫码器名称', 'scanner name to report'))
    .option('--station <station>', tr('上报的工位（窗口）', 'station (desk) to report'));
  act<CommonOptions & { scanner?: string; station?: string }>(inject, async (values, [text]) => {
    const target = hisTarget(values.url ? undefined : loadCliConfig(values), values);
    const body: Record<string, string> = { text: text! };
    if (values.scanner) body.scanner = values.scanner;
    if (values.station) body.station = values.station;
    let res: Response;
    try {
      res = await fetch(`${target.url}/v1/scans/inject`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(target.key ? { Authorization: `Bearer ${target.key}` } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10000),
      });
    } catch (err) {
      throw unreachable(target, (err as Error).message);
    }
    const answer = await res.text();
    if (values.json) out(JSON.stringify({ http_status: res.status, body: safeJson(answer) }, null, 2));
    else out(`${res.status} ${answer}`);
    if (res.status === 401 || res.status === 403) return EXIT.USAGE;
    return res.ok ? EXIT.OK : EXIT.FAILURE;
  });
  return defineGroup('scanners', tr('设备或本机的扫码器；模拟扫码', 'scanners of the appliance or plugged into this machine; inject a scan')).addCommand(list).addCommand(inject);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function main(argv: string[], out?: (line: string) => void): Promise<number> {
  return runCli(() => command(out), argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
