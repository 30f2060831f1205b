/**
 * `ehc-edge verify <code>`: verify one code through the running appliance's HIS port and print the
 * answer with personal data masked (Chinese by default, --lang en). Exit 0 for 0000, 1 for a rejection,
 * 3 when the appliance is unreachable.
 */
import { maskDeep } from '../src/platform/mask.ts';
import { act, cliLang, defineCommand, EXIT, hisTarget, isEntry, loadCliConfig, runCli, tr, type CommonOptions, type Lang, keyRefused, unreachable } from './lib/cli.ts';

const DECIDED_BY_ZH: Record<string, string> = { local: '本地核验', upstream: '发卡方核验', 'cross-domain': '跨域核验', 'offline-local': '离线本地核验', deferred: '稍后判定' };

/** The answer as one line: `200 0000 <ret_msg> (local) <id_no> <user_name>`, in Chinese with words for each part. */
export function formatAnswer(status: number, body: Record<string, unknown>, lang: Lang): string {
  if (lang === 'en') return `${status} ${body.ret_code} ${body.ret_msg}${body.decided_by ? ` (${body.decided_by})` : ''}${body.id_no ? ` ${body.id_no}` : ''}${body.user_name ? ` ${body.user_name}` : ''}`;
  const verdict = status === 202 || body.decided_by === 'deferred' ? '已受理' : body.ret_code === '0000' ? '核验通过' : '未通过';
  const by = typeof body.decided_by === 'string' ? `（${DECIDED_BY_ZH[body.decided_by] ?? body.decided_by}）` : '';
  const who = [body.user_name ? `姓名 ${body.user_name}` : '', body.id_no ? `证件号 ${body.id_no}` : ''].filter(Boolean).join('，');
  return `${verdict}${by}：${body.ret_code} ${body.ret_msg}${who ? `；${who}` : ''}（HTTP ${status}）`;
}

export function command() {
  const cmd = defineCommand(
    'verify',
    tr('通过运行中的设备核验一个码', 'verify one code through the running appliance'),
    tr(
      '通过运行中的设备（HIS 端口的 POST /v1/verify）核验一个电子健康码，输出脱敏后的应答。码被拒绝时退出码为 1。',
      'Verify one health code through the running appliance (POST /v1/verify on the HIS port) and print the answer with personal data masked. Exits 1 when the code is rejected.',
    ),
  )
    .argument('<code>', tr('扫码器读到的健康码文本', 'the health code text as the scanner reads it'))
    .option('--defer', tr('发卡方不可达时允许设备先答 202、稍后判定', 'let the appliance answer 202 and decide later when the home system is unreachable'));
  return act<CommonOptions & { defer?: boolean }>(cmd, async (values, [code]) => {
    const target = hisTarget(values.url ? undefined : loadCliConfig(values), values);
    let res: Response;
    try {
      res = await fetch(`${target.url}/v1/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${target.key ?? ''}` },
        body: JSON.stringify({ ehealth_code: code, ...(values.defer ? { defer: true } : {}) }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw unreachable(target, (err as Error).message);
    }
    if (res.status === 401 || res.status === 403) throw keyRefused(res.status);
    const body = maskDeep(await res.json()) as Record<string, unknown>;
    if (values.json) process.stdout.write(JSON.stringify({ http_status: res.status, ...body }, null, 2) + '\n');
    else process.stdout.write(formatAnswer(res.status, body, cliLang()) + '\n');
    return body.ret_code === '0000' ? EXIT.OK : EXIT.FAILURE;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
