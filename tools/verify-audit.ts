/**
 * ehc-edge verify-audit [--dir DIR] [--config PATH] [--key-file FILE] [--json] [--quiet] [--ack [--note TEXT]]
 * Checks the audit chain (src/ops/audit.ts) with the card's MAC key, from its anchor to its head, reading
 * the day files directly (the appliance may be running or not). Reports the first broken record: edited,
 * deleted, reordered, malformed, cut from the end, or a forged anchor/head.
 * Signed `audit.recovered` records (power cuts) are accepted and listed; signed `audit.integrity` records
 * (a cut chain, a deleted head or folder, an outbox behind its high-water mark) are listed as alarms.
 * --ack (appliance stopped): an admin acknowledges the open integrity alarms in a signed record, which
 * clears them from status and metrics; verify-audit lists them as acknowledged from then on.
 * Exit 0 intact, 1 broken (the record is named) or an integrity alarm not acknowledged, 2 usage/config.
 */
import path from 'node:path';
import { AuditTrail } from '../src/ops/audit.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { act, CliError, cliLang, defineCommand, EXIT, isEntry, loadCliConfig, progress, runCli, tr, type CommonOptions } from './lib/cli.ts';
import { openToolCard } from './lib/card.ts';
import { cstDateTime } from '../src/platform/time.ts';

export function command() {
  const cmd = defineCommand(
    'verify-audit',
    tr('核验审计链，指出第一条损坏的记录', 'check the audit chain and name the first broken record'),
    tr(
      '用密码卡的 MAC 密钥从锚点到末端核验审计链，直接读取日文件（设备运行与否均可）。报告第一条损坏的记录：被修改、删除、重排、格式错误、末尾被截断，或伪造的锚点/末端。列出设备恢复过的断电（签名的 audit.recovered 记录）和完整性告警（签名的 audit.integrity 记录）；有未确认的告警时退出码为 1。',
      "Checks the audit chain with the card's MAC key, from its anchor to its head, reading the day files directly (the appliance may be running or not). Reports the first broken record: edited, deleted, reordered, malformed, cut from the end, or a forged anchor/head. Lists the power losses the appliance recovered from (signed audit.recovered records) and the integrity alarms (signed audit.integrity records); exit 1 while an alarm is not acknowledged.",
    ),
    { his: false },
  )
    .option('--dir <dir>', tr('审计目录（默认：<stateDir>/audit）', 'audit folder (default: <stateDir>/audit)'))
    .option('--key-file <file>', tr('含 MAC 密钥的软卡密钥文件（默认：配置的密码卡）', 'a software card key file holding the MAC key (default: the configured card)'))
    .option('--ack', tr('用一条签名记录确认未处理的完整性告警（设备停止时）', 'acknowledge the open integrity alarms in a signed record (appliance stopped)'))
    .option('--note <text>', tr('与 --ack 一起：发现了什么、做了什么', 'with --ack: what was found and done'));
  return act<CommonOptions & { dir?: string; keyFile?: string; ack?: boolean; note?: string }>(cmd, async (values) => {
    const zh = cliLang() === 'zh';
    const config = loadCliConfig(values);
    const dir = path.resolve(values.dir ?? path.join(config.stateDir, 'audit'));
    const card = await openToolCard(config, values.keyFile ? path.resolve(values.keyFile) : undefined);
    const bar = progress(!values.quiet);
    try {
      if (values.ack) {
        // an admin has looked at the alarms: a signed acknowledgement (the appliance must be stopped: one writer)
        const trail = await AuditTrail.open({ dir, card, macKey: config.card.keys.mac, retainDays: config.audit.retainDays, maxBytes: config.audit.maxBytes });
        try {
          const open = trail.integrityAlarms();
          const rec = await trail.acknowledgeAlarms(process.env.SUDO_USER ?? process.env.USER ?? 'admin', values.note);
          if (!values.json) console.log(rec ? (zh ? `已确认 ${open.length} 个完整性告警（审计记录序号 ${rec.seq}）` : `acknowledged ${open.length} integrity alarm(s) in audit record seq ${rec.seq}`) : zh ? '没有未确认的完整性告警' : 'no open integrity alarms');
        } finally {
          await trail.close();
        }
      }
      const report = await verifyAuditChain(dir, card, config.card.keys.mac, {
        onProgress: (p) => bar.update(tr(`verify-audit：${p.fileIndex}/${p.files} 个日文件，已检查 ${p.records} 条记录（${p.file}）`, `verify-audit: ${p.fileIndex}/${p.files} day files, ${p.records} records checked (${p.file})`)),
      });
      bar.done();
      if (report.files === 0) throw new CliError(EXIT.USAGE, `${dir} 中没有审计文件`, `no audit files in ${dir}`);
      const open = report.alarms.filter((a) => !a.acknowledged);
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else {
        for (const p of report.powerLosses) console.log(p.message);
        if (zh) {
          // the problem's own words (message) stay as the checker wrote them: file names and seqs
          for (const a of report.alarms) console.log(`完整性告警 (${a.problem})，序号 ${a.seq}，${a.time ? cstDateTime(new Date(a.time)) : ''}：${a.message}${a.acknowledged ? ' [已确认]' : ''}`);
          if (!report.ok) console.log(`审计链已损坏 (${report.broken!.problem})：${report.broken!.message}\n  在它之前核验了 ${report.records} 条完好记录，目录 ${dir}`);
          else if (open.length) console.log(`审计链不完整：${open.length} 个完整性告警未确认（停止设备后运行 ehc-edge verify-audit --ack）；${report.records} 条记录核验通过，序号 ${report.firstSeq}..${report.lastSeq}`);
          else console.log(`审计链完好：${report.records} 条记录，序号 ${report.firstSeq}..${report.lastSeq}，${report.files} 个日文件（北京时间日期），目录 ${dir}${report.powerLosses.length ? `，已恢复 ${report.powerLosses.length} 次断电` : ''}`);
        } else {
          for (const a of report.alarms) console.log(`INTEGRITY ALARM (${a.problem}) at seq ${a.seq}, ${a.time}: ${a.message}${a.acknowledged ? ' [acknowledged]' : ''}`);
          if (!report.ok) console.log(`AUDIT CHAIN BROKEN (${report.broken!.problem}): ${report.broken!.message}\n  checked ${report.records} intact records before it, in ${dir}`);
          else if (open.length) console.log(`AUDIT CHAIN NOT INTACT: ${open.length} integrity alarm(s) not acknowledged (ehc-edge verify-audit --ack, appliance stopped); ${report.records} records verify, seq ${report.firstSeq}..${report.lastSeq}`);
          else console.log(`audit chain intact: ${report.records} records, seq ${report.firstSeq}..${report.lastSeq}, ${report.files} day files in ${dir}${report.powerLosses.length ? `, ${report.powerLosses.length} power loss(es) recovered` : ''}`);
        }
      }
      return report.ok && open.length === 0 ? EXIT.OK : EXIT.FAILURE;
    } finally {
      await card.close();
    }
  });
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
