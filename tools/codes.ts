/**
 * `ehc-edge codes`: print demo health codes for the demo population.
 *   local codes are issued with the appliance's own crypto card keys (they verify `local`);
 *   foreign codes with the simulator's fixed keys for `simulator.ehcin` (they verify `cross-domain`).
 * Options: --static, --foreign, --expired, --count N, --ttl SECONDS (default 300), --json, --config F
 */
import { openCard } from '../src/crypto/open-card.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { createLogger } from '../src/platform/log.ts';
import { maskIdNo, maskName } from '../src/platform/mask.ts';
import { SimCardSystem, makePopulation, DEFAULT_FOREIGN_EHCIN } from '../demo/simulator/index.ts';
import { act, CliError, defineCommand, EXIT, isEntry, loadCliConfig, runCli, type CommonOptions } from './lib/cli.ts';

type CodesOptions = CommonOptions & { static?: boolean; foreign?: boolean; expired?: boolean; count: string; ttl: string };

export function command() {
  const cmd = defineCommand(
    'codes',
    'demo health codes for testing a desk',
    "Demo health codes for the demo population: local codes are issued with the appliance's own crypto card keys (they verify `local`); foreign codes with the simulator's fixed keys for simulator.ehcin (they verify `cross-domain`).",
    { his: false },
  )
    .option('--static', 'static codes (no expiry; identity check required)')
    .option('--foreign', 'codes of the demo foreign card system')
    .option('--expired', 'dynamic codes that expired an hour ago')
    .option('--count <n>', 'how many codes (1..10000)', '1')
    .option('--ttl <seconds>', 'validity of dynamic codes', '300');
  return act<CodesOptions>(cmd, async (values) => {
    const count = Number(values.count);
    const ttl = Number(values.ttl);
    if (!Number.isInteger(count) || count < 1 || count > 10000 || !Number.isFinite(ttl)) {
      throw new CliError(EXIT.USAGE, '--count wants 1..10000 and --ttl a number of seconds');
    }
    const config = loadCliConfig(values);
    const people = makePopulation();
    const local = config.site.localEhcins[0];
    if (!values.foreign && !local) {
      throw new CliError(EXIT.USAGE, 'site.localEhcins is empty: no local codes to issue (try --foreign)');
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
    return EXIT.OK;
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command(), argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
