/**
 * ehc-edge verify-audit [--dir DIR] [--config PATH] [--key-file FILE] [--json] [--quiet]
 * Checks the audit chain (src/ops/audit.ts) with the card's MAC key, from its anchor to its head, reading
 * the day files directly (the appliance may be running or not). Reports the first broken record: edited,
 * deleted, reordered, malformed, cut from the end, or a forged anchor/head.
 * Exit 0 intact, 1 broken (the record is named), 2 usage/config (no key file, unreadable config).
 */
import path from 'node:path';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { act, CliError, defineCommand, EXIT, isEntry, loadCliConfig, progress, runCli, type CommonOptions } from './lib/cli.ts';
import { openToolCard } from './lib/card.ts';

export function command() {
  const cmd = defineCommand('verify-audit', 'check the audit chain and name the first broken record', 'Checks the audit chain with the card\'s MAC key, from its anchor to its head, reading the day files directly (the appliance may be running or not). Reports the first broken record: edited, deleted, reordered, malformed, cut from the end, or a forged anchor/head.', { his: false })
    .option('--dir <dir>', 'audit folder (default: <stateDir>/audit)')
    .option('--key-file <file>', 'a software card key file holding the MAC key (default: the configured card)');
  return act<CommonOptions & { dir?: string; keyFile?: string }>(cmd, async (values) => {
    const config = loadCliConfig(values);
    const dir = path.resolve(values.dir ?? path.join(config.stateDir, 'audit'));
    const card = await openToolCard(config, values.keyFile ? path.resolve(values.keyFile) : undefined);
    const bar = progress(!values.quiet);
    try {
      const report = await verifyAuditChain(dir, card, config.card.keys.mac, {
        onProgress: (p) => bar.update(`verify-audit: ${p.fileIndex}/${p.files} day files, ${p.records} records checked (${p.file})`),
      });
      bar.done();
      if (report.files === 0) throw new CliError(EXIT.USAGE, `no audit files in ${dir}`);
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else if (report.ok) console.log(`audit chain intact: ${report.records} records, seq ${report.firstSeq}..${report.lastSeq}, ${report.files} day files in ${dir}`);
      else console.log(`AUDIT CHAIN BROKEN (${report.broken!.problem}): ${report.broken!.message}\n  checked ${report.records} intact records before it, in ${dir}`);
      return report.ok ? EXIT.OK : EXIT.FAILURE;
    } finally {
      await card.close();
    }
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command(), argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
