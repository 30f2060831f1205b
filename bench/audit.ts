/**
 * Audit trail throughput with the real SoftCard (HMAC-SM3) and fsync: records per second when callers
 * append one at a time (every append waits for its fsync) and when many append at once (group commit:
 * one write + fsync per batch), records written the way the appliance does (record(), not awaited)
 * with the process CPU they cost, and the time verify-audit needs per record.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { AuditTrail, type AuditEvent } from '../src/ops/audit.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';

const event = (i: number): AuditEvent => ({
  kind: 'verify',
  action: 'verify',
  route: 'local',
  terminal: '3502A0001STMA0001',
  scanner: 'serial:/dev/ttyUSB0',
  operator: 'desk-op',
  retCode: '0000',
  subject: { name: '陈俊海', idType: '01', idNo: '350322199008207715', ehealthCardId: 'A'.repeat(64) },
  detail: { out_verify_no: `20261126${String(i).padStart(24, '0')}` },
});

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-bench-audit-'));
  const card = await SoftCard.open(path.join(dir, 'keys.json'), { ...DEFAULT_KEY_INDEXES });
  try {
    const trail = await AuditTrail.open({ dir: path.join(dir, 'audit'), card, macKey: DEFAULT_KEY_INDEXES.mac });
    const serialN = 300;
    let t = performance.now();
    for (let i = 0; i < serialN; i++) await trail.append(event(i));
    const serialMs = performance.now() - t;
    const concurrentN = 5000;
    t = performance.now();
    await Promise.all(Array.from({ length: concurrentN }, (_, i) => trail.append(event(i))));
    const concurrentMs = performance.now() - t;
    // as the appliance writes them: record() without waiting, 500 per event-loop turn
    const recordN = 50_000;
    const cpu0 = process.cpuUsage();
    t = performance.now();
    for (let i = 0; i < recordN; i += 500) {
      for (let j = 0; j < 500; j++) trail.record(event(i + j));
      await new Promise((r) => setImmediate(r));
    }
    await trail.flush();
    const recordMs = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    await trail.close();
    t = performance.now();
    const report = await verifyAuditChain(path.join(dir, 'audit'), card, DEFAULT_KEY_INDEXES.mac);
    const verifyMs = performance.now() - t;
    if (!report.ok) throw new Error(`chain broken: ${report.broken?.message}`);
    return {
      one_at_a_time_records_per_s: Math.round(serialN / (serialMs / 1000)),
      one_at_a_time_ms_per_record: +(serialMs / serialN).toFixed(2),
      group_commit_records_per_s: Math.round(concurrentN / (concurrentMs / 1000)),
      record_without_waiting_per_s: Math.round(recordN / (recordMs / 1000)),
      record_cpu_us_per_record: +((cpu.user + cpu.system) / recordN).toFixed(1),
      verify_us_per_record: +((verifyMs * 1000) / report.records).toFixed(1),
      records: report.records,
    };
  } finally {
    await card.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
