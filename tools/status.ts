/**
 * ehc-edge status [--json] [--config PATH] [--url URL] [--key KEY]
 * The running appliance's state (GET /v1/status on the HIS port): version and uptime, crypto card,
 * upstream/VPN and latency, outbox, scanners, recent errors by return code.
 * Exit 0 when every component is healthy, 1 when one needs attention, 2 usage/config, 3 unreachable.
 */
import { act, defineCommand, EXIT, hisGet, hisTarget, isEntry, loadCliConfig, runCli, table } from './lib/cli.ts';
import type { StatusReport } from '../src/ops/status.ts';

function age(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function formatStatus(s: StatusReport): string {
  const since = (iso: string | null | undefined) => (iso ? `${age((Date.parse(s.now) - Date.parse(iso)) / 1000)} ago` : 'never');
  const out: string[] = [];
  out.push(`ehc-edge ${s.version} · ${s.site?.orgName ?? ''} ${s.site?.orgCode ?? ''} · ${s.site?.termId ?? ''} · up ${age(s.uptimeSeconds)} · ${s.ok ? 'HEALTHY' : 'ATTENTION'}`);
  out.push(`card      ${s.card?.ok ? 'ready' : 'FAILED'}  (${s.card?.driver}: ${s.card?.detail})`);
  const u = s.upstream;
  out.push(`upstream  ${u?.reachable ? 'reachable' : 'UNREACHABLE'}  ${u?.latencyMs !== undefined ? Math.round(u.latencyMs) + ' ms' : ''}  ${u?.url ?? ''}${u?.lastError ? '  — ' + u.lastError : ''}`);
  const o = s.outbox;
  if (o) out.push(`outbox    ${o.depth} queued, oldest ${age(o.oldestAgeSeconds)}, ${o.dead} dead${o.full ? ', FULL (new records refused)' : ''}`);
  if (s.audit) out.push(`audit     last seq ${s.audit.lastSeq}, ${s.audit.files} day files${s.audit.failures ? `, ${s.audit.failures} FAILED appends (${s.audit.lastError})` : ''}`);
  out.push('', 'scanners');
  out.push(table((s.scanners ?? []).map((x) => [x.name ?? x.id, x.station, x.driver, x.state, since(x.lastScanAt)]), ['scanner', 'station', 'driver', 'state', 'last scan']));
  const errs = s.errors?.byCode ?? [];
  out.push('', `errors (last ${age(s.errors?.windowSeconds)})`);
  out.push(errs.length ? table(errs.map((e) => [e.ret_code, e.count, e.ret_msg, since(e.last_at)]), ['code', 'count', 'meaning', 'last']) : 'none');
  if (s.problems?.length) out.push('', `not answering: ${s.problems.join('; ')}`);
  return out.join('\n');
}

export function command() {
  return act(defineCommand('status', 'appliance health: card, upstream/VPN, outbox, scanners, errors', 'The running appliance\'s state (GET /v1/status on the HIS port): version and uptime, crypto card, upstream/VPN and latency, outbox, scanners (configured ones too, when absent), recent errors by return code, and the reason for every problem. Exits 1 when anything needs attention.'), async (opts) => {
    const config = opts.url ? undefined : loadCliConfig(opts);
    const s = await hisGet<StatusReport>(hisTarget(config, opts), '/v1/status');
    console.log(opts.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    return s.ok ? EXIT.OK : EXIT.FAILURE;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command(), argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
