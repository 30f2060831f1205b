/**
 * `ehc-edge codes`: print demo health codes for the demo population.
 *   local codes are issued with the appliance's own crypto card keys (they verify `local`);
 *   foreign codes with the simulator's fixed keys for `simulator.ehcin` (they verify `cross-domain`).
 * Options: --static, --foreign, --expired, --count N, --ttl SECONDS (default 300), --json, --config F
 * stdout is for machines in every language: one `<code>\t# <type> <issuer> <holder> <id_no>` line per code
 * (README's `codes | cut -f1`) or --json; what was made is said on stderr (Chinese by default, -q: not).
 */
import { openCard } from '../src/crypto/open-card.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { createLogger } from '../src/platform/log.ts';
import { maskIdNo, maskName } from '../src/platform/mask.ts';
import { SimCardSystem, makePopulation, DEFAULT_FOREIGN_EHCIN } from '../demo/simulator/index.ts';
import { act, CliError, cliLang, defineCommand, EXIT, isEntry, loadCliConfig, runCli, tr, type CommonOptions, type Lang } from './lib/cli.ts';

type CodesOptions = CommonOptions & { static?: boolean; foreign?: boolean; expired?: boolean; count: string; ttl: string };

/** The stderr line saying what was made, e.g. `已生成 1 个本地动态码（300 秒内有效），发卡方 3502A0001；…`. */
export function codesSummary(n: number, o: { static?: boolean; foreign?: boolean; expired?: boolean; ttl: number; issuer: string }, lang: Lang): string {
  if (lang === 'zh') {
    const type = o.static ? '静态码（不过期，需核对身份）' : o.expired ? '已过期的动态码（一小时前过期）' : `动态码（${o.ttl} 秒内有效）`;
    return `已生成 ${n} 个${o.foreign ? '外地' : '本地'}${type}，发卡方 ${o.issuer}；核验：ehc-edge verify <码>`;
  }
  const detail = o.static ? ' (no expiry; identity check required)' : o.expired ? ', expired an hour ago' : `, valid for ${o.ttl} s`;
  return `${n} ${o.foreign ? 'foreign' : 'local'} ${o.static ? 'static' : 'dynamic'} code(s) of issuer ${o.issuer}${detail}; verify one: ehc-edge verify <code>`;
}

export function command() {
  const cmd = defineCommand(
    'codes',
    tr('用于测试窗口的演示健康码', 'demo health codes for testing a desk'),
    tr(
      '为演示人群生成健康码：本地码用设备自己的密码卡密钥签发（核验结果 `local`）；外地码用模拟器为 simulator.ehcin 固定的密钥签发（核验结果 `cross-domain`）。stdout 每行一个码加制表符和注释（`codes | cut -f1` 取码），或 --json；生成情况写在 stderr。',
      "Demo health codes for the demo population: local codes are issued with the appliance's own crypto card keys (they verify `local`); foreign codes with the simulator's fixed keys for simulator.ehcin (they verify `cross-domain`). stdout has one code per line, a tab and a comment (`codes | cut -f1` takes the codes), or --json; what was made is said on stderr.",
    ),
    { his: false },
  )
    .option('--static', tr('静态码（不过期；需核对身份）', 'static codes (no expiry; identity check required)'))
    .option('--foreign', tr('演示用外地发卡系统的码', 'codes of the demo foreign card system'))
    .option('--expired', tr('一小时前已过期的动态码', 'dynamic codes that expired an hour ago'))
    .option('--count <n>', tr('生成个数（1..10000）', 'how many codes (1..10000)'), '1')
    .option('--ttl <seconds>', tr('动态码的有效期（秒）', 'validity of dynamic codes'), '300');
  return act<CodesOptions>(cmd, async (values) => {
    const count = Number(values.count);
    const ttl = Number(values.ttl);
    if (!Number.isInteger(count) || count < 1 || count > 10000 || !Number.isFinite(ttl)) {
      throw new CliError(EXIT.USAGE, '--count 须为 1..10000，--ttl 须为秒数', '--count wants 1..10000 and --ttl a number of seconds');
    }
    const config = loadCliConfig(values);
    const people = makePopulation();
    const local = config.site.localEhcins[0];
    if (!values.foreign && !local) {
      throw new CliError(EXIT.USAGE, 'site.localEhcins 为空：没有可签发的本地码（可试 --foreign）', 'site.localEhcins is empty: no local codes to issue (try --foreign)');
    }
    const card = values.foreign ? undefined : await openCard(config.card, createLogger({ level: 'warn' }));
    const foreign = values.foreign ? new SimCardSystem({ ehcin: config.simulator.ehcin ?? DEFAULT_FOREIGN_EHCIN }) : undefined;
    const out: Array<Record<string, string>> = [];
    for (let i = 0; i < count; i++) {
      const p = people[i % people.length]!;
      const identity = { idType: p.idType, idNo: p.idNo };
      const expiresAt = values.static ? undefined : new Date(Date.now() + (values.expired ? -3600 : ttl) * 1000);
      const code = card
        ? await issueHealthCode(card, { identity, ehcappid: `${local}APPA0001`, expiresAt })
        : foreign!.issueCode(identity, expiresAt ? { expiresAt } : { static: true });
      out.push({ code, holder: maskName(p.name), id_no: maskIdNo(p.idNo), type: values.static ? 'static' : 'dynamic', issuer: card ? local! : foreign!.ehcin });
    }
    await card?.close();
    if (values.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    else for (const c of out) process.stdout.write(`${c.code}\t# ${c.type} ${c.issuer} ${c.holder} ${c.id_no}\n`);
    if (!values.json && !values.quiet) process.stderr.write(codesSummary(count, { ...values, ttl, issuer: card ? local! : foreign!.ehcin }, cliLang()) + '\n');
    return EXIT.OK;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
