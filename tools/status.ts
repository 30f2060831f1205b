/**
 * ehc-edge status [--json] [--config PATH] [--url URL] [--key KEY]
 * The running appliance's state (GET /v1/status on the HIS port): version and uptime, crypto card,
 * upstream/VPN and latency, outbox, scanners, recent errors by return code.
 * Exit 0 when every component is healthy, 1 when one needs attention, 2 usage/config, 3 unreachable.
 */
import { act, cliLang, defineCommand, EXIT, hisGet, hisTarget, isEntry, langFrom, loadCliConfig, runCli, table, tr, type CommonOptions, type Lang } from './lib/cli.ts';
import type { ScannerReport, StatusReport } from '../src/ops/status.ts';
import { cstShort } from '../src/platform/time.ts';

export { langFrom, type Lang };

const T = {
  zh: { up: '运行', healthy: '正常', degraded: '降级', down: '故障', problems: '问题', card: '密码卡', ready: '就绪', failed: '不可用', upstream: '发卡方', reachable: '可达', unreachable: '不可达', outbox: '待上传', queued: '条', oldest: '最早', dead: '失败', full: '已满（新记录被拒绝）', audit: '审计', lastSeq: '最后序号', dayFiles: '个日文件', failedAppends: '次写入失败', scanners: '扫码器', cols: ['扫码器', '工位', '驱动', '状态', '最后扫码'], errors: '错误', errCols: ['返回码', '次数', '含义', '最近'], none: '无', since: '自', ago: '前', never: '从未', noScanners: '无扫码器', times: '时间为北京时间 (CST, UTC+8)', state: { ready: '就绪', disconnected: '已断开', error: '故障', opening: '打开中', unplugged: '已拔出', refused: '已拒绝' } },
  en: { up: 'up', healthy: 'HEALTHY', degraded: 'DEGRADED', down: 'DOWN', problems: 'problems', card: 'card', ready: 'ready', failed: 'FAILED', upstream: 'upstream', reachable: 'reachable', unreachable: 'UNREACHABLE', outbox: 'outbox', queued: 'queued', oldest: 'oldest', dead: 'dead', full: 'FULL (new records refused)', audit: 'audit', lastSeq: 'last seq', dayFiles: 'day files', failedAppends: 'FAILED appends', scanners: 'scanners', cols: ['scanner', 'station', 'driver', 'state', 'last scan'], errors: 'errors', errCols: ['code', 'count', 'meaning', 'last'], none: 'none', since: 'since', ago: 'ago', never: 'never', noScanners: 'no scanners', times: 'times in China Standard Time (CST, UTC+8)', state: { ready: 'ready', disconnected: 'disconnected', error: 'error', opening: 'opening', unplugged: 'unplugged', refused: 'refused' } },
} as const;

function age(seconds: number | null | undefined, lang: Lang = 'en'): string {
  if (seconds === null || seconds === undefined) return '-';
  const s = Math.round(seconds);
  const [sec, min, h, d] = lang === 'zh' ? [' 秒', ' 分', ' 小时', ' 天'] : [' s', ' min', ' h', ' d'];
  if (s < 60) return `${s}${sec}`;
  if (s < 3600) return `${Math.floor(s / 60)}${min} ${s % 60}${sec}`;
  if (s < 86400) return `${Math.floor(s / 3600)}${h} ${Math.floor((s % 3600) / 60)}${min}`;
  return `${Math.floor(s / 86400)}${d} ${Math.floor((s % 86400) / 3600)}${h}`;
}

export function formatStatus(s: StatusReport, lang: Lang = 'zh'): string {
  const t = T[lang];
  const now = new Date(s.now);
  const ago = (iso: string | null | undefined) => (iso ? (lang === 'zh' ? `${age((now.getTime() - Date.parse(iso)) / 1000, lang)}${t.ago}` : `${age((now.getTime() - Date.parse(iso)) / 1000, lang)} ${t.ago}`) : t.never);
  const at = (iso: string) => `${t.since} ${cstShort(new Date(iso), now)} CST`;
  const health = s.health ?? (s.ok ? 'ok' : 'degraded');
  const badge = health === 'ok' ? t.healthy : health === 'down' ? t.down : t.degraded;
  const out: string[] = [];
  out.push(`ehc-edge ${s.version} · ${s.site?.orgName ?? ''} ${s.site?.orgCode ?? ''} · ${s.site?.termId ?? ''} · ${t.up} ${age(s.uptimeSeconds, lang)} · ${badge}`);
  if (s.problems?.length) {
    out.push(`${t.problems}:`);
    for (const p of s.problems) out.push(`  - ${lang === 'zh' ? p.reason_zh : p.reason}${p.since ? ` (${at(p.since)})` : ''}`);
  }
  out.push(`${t.card.padEnd(lang === 'zh' ? 6 : 10)}${s.card?.ok ? t.ready : t.failed}  (${s.card?.driver}: ${s.card?.detail})`);
  const u = s.upstream;
  out.push(`${t.upstream.padEnd(lang === 'zh' ? 6 : 10)}${u?.reachable ? t.reachable : t.unreachable}  ${u?.latencyMs !== undefined ? Math.round(u.latencyMs) + ' ms' : ''}  ${u?.url ?? ''}${u?.lastError ? '  — ' + u.lastError : ''}`);
  const o = s.outbox;
  if (o) out.push(`${t.outbox.padEnd(lang === 'zh' ? 6 : 10)}${o.depth} ${t.queued}, ${t.oldest} ${age(o.oldestAgeSeconds, lang)}, ${o.dead} ${t.dead}${o.full ? ', ' + t.full : ''}`);
  if (s.audit) out.push(`${t.audit.padEnd(lang === 'zh' ? 6 : 10)}${t.lastSeq} ${s.audit.lastSeq}, ${s.audit.files} ${t.dayFiles}${s.audit.failures ? `, ${s.audit.failures} ${t.failedAppends} (${s.audit.lastError})` : ''}`);
  out.push('', t.scanners);
  const stateText = (x: ScannerReport) => {
    const word = t.state[x.state] ?? x.state;
    if (x.state === 'unplugged' && x.since) return `${word} ${at(x.since)}`;
    if (x.detail && x.state !== 'ready') return `${word}: ${x.detail}`;
    return word;
  };
  const scanners = s.scanners ?? [];
  out.push(scanners.length ? table(scanners.map((x) => [x.name ?? x.id, x.station, x.driver, stateText(x), ago(x.lastScanAt)]), [...t.cols]) : t.noScanners);
  const errs = s.errors?.byCode ?? [];
  out.push('', `${t.errors} (${age(s.errors?.windowSeconds, lang)})`);
  out.push(errs.length ? table(errs.map((e) => [e.ret_code, e.count, e.ret_msg, ago(e.last_at)]), [...t.errCols]) : t.none);
  out.push('', `(${t.times})`);
  return out.join('\n');
}

export function command() {
  const cmd = defineCommand(
    'status',
    tr('设备健康状况：密码卡、发卡方/VPN、待上传队列、扫码器、错误', 'appliance health: card, upstream/VPN, outbox, scanners, errors'),
    tr(
      '运行中设备的状态（HIS 端口的 GET /v1/status）：版本与运行时长、密码卡、发卡方/VPN 及延迟、待上传队列、扫码器（已配置但不在的也列出）、按返回码统计的近期错误，以及每个问题的原因。有需要处理的情况（降级或故障）时退出码为 1。默认中文；时间为北京时间。',
      "The running appliance's state (GET /v1/status on the HIS port): version and uptime, crypto card, upstream/VPN and latency, outbox, scanners (configured ones too, when absent), recent errors by return code, and the reason for every problem. Exits 1 when anything needs attention (health degraded or down). Chinese by default; times in China Standard Time.",
    ),
  );
  return act(cmd, async (opts: CommonOptions) => {
    const config = opts.url ? undefined : loadCliConfig(opts);
    const s = await hisGet<StatusReport>(hisTarget(config, opts), '/v1/status');
    console.log(opts.json ? JSON.stringify(s, null, 2) : formatStatus(s, cliLang()));
    return s.ok ? EXIT.OK : EXIT.FAILURE;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
