/**
 * One day rule everywhere: China Standard Time (src/platform/time.ts). With an injected clock, a record
 * at 23:59:59 CST and one at 00:00:00 CST the next day land in different audit day files and different
 * statistics days, whatever TZ the process has; an audit folder whose files were named by the UTC day
 * (the rule before) still verifies after CST-named files follow; log lines carry the CST time beside UTC.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AuditTrail } from '../src/ops/audit.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { UsageStats } from '../src/ops/stats.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { cstDay, cstIso } from '../src/platform/time.ts';
import { macCard } from './helpers/mac-card.ts';

const card = macCard();
const tmp = () => mkdtempSync(path.join(tmpdir(), 'ehc-cst-'));
// 2026-12-02 23:59:59 CST and 2026-12-03 00:00:00 CST (15:59:59Z / 16:00:00Z: the same UTC day)
const LAST = new Date('2026-12-02T15:59:59.000Z');
const FIRST = new Date('2026-12-02T16:00:00.000Z');

test('cstDay splits at midnight CST, not UTC', () => {
  assert.is(cstDay(LAST), '20261202');
  assert.is(cstDay(FIRST), '20261203');
  assert.is(cstIso(FIRST), '2026-12-03T00:00:00.000+08:00');
});

test('audit: 23:59:59 CST and 00:00:00 CST the next day go to two day files named by the CST date; the chain verifies', async () => {
  const dir = tmp();
  let now = LAST;
  const trail = await AuditTrail.open({ dir, card, macKey: card.index, clock: () => now });
  await trail.append({ kind: 'config', action: 'before-midnight' });
  now = FIRST;
  await trail.append({ kind: 'config', action: 'after-midnight' });
  await trail.close();
  const files = readdirSync(dir).filter((n) => n.startsWith('audit-')).sort();
  assert.equal(files, ['audit-20261202.jsonl', 'audit-20261203.jsonl']);
  assert.match(readFileSync(path.join(dir, files[0]!), 'utf8'), /before-midnight/);
  assert.match(readFileSync(path.join(dir, files[1]!), 'utf8'), /after-midnight/);
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
});

test('audit: a state folder with UTC-named day files (the old rule) still verifies once CST-named files follow', async () => {
  const dir = tmp();
  // 2026-12-01 20:00Z is 2026-12-02 04:00 CST: the old rule named its file by the UTC day, 20261201
  const early = new Date('2026-12-01T20:00:00.000Z');
  let trail = await AuditTrail.open({ dir, card, macKey: card.index, clock: () => early });
  await trail.append({ kind: 'config', action: 'old-rule' });
  await trail.close();
  renameSync(path.join(dir, 'audit-20261202.jsonl'), path.join(dir, 'audit-20261201.jsonl'));
  assert.ok((await verifyAuditChain(dir, card, card.index)).ok, 'the old folder as it was');
  // after the upgrade: the same CST day (20261202) and the next one
  let now = new Date('2026-12-01T21:00:00.000Z');
  trail = await AuditTrail.open({ dir, card, macKey: card.index, clock: () => now });
  await trail.append({ kind: 'config', action: 'new-rule-1' });
  now = FIRST;
  await trail.append({ kind: 'config', action: 'new-rule-2' });
  await trail.close();
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('audit-')).sort(), ['audit-20261201.jsonl', 'audit-20261202.jsonl', 'audit-20261203.jsonl']);
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
  assert.is(report.records, 3);
});

test('statistics: the two verifications count on two CST days', async () => {
  const dir = tmp();
  let now = LAST;
  const stats = await UsageStats.open({ file: path.join(dir, 'usage.json'), site: { orgCode: '45678901-2' } as never, defaultScene: '010101', clock: () => now, saveDelayMs: 10 });
  stats.recordVerification({ decided_by: 'local', offline: false, out_verify_time: '' });
  now = FIRST;
  stats.recordVerification({ decided_by: 'local', offline: false, out_verify_time: '' });
  const rows = stats.usecardSceneList({ from: "20261201", to: "20261231" }).rows as unknown as Array<Record<string, unknown>>;
  await stats.close();
  const days = rows.map((r) => Object.values(r).find((v) => typeof v === 'string' && /^2026120[23]$/.test(v))).sort();
  assert.equal(days, ['20261202', '20261203'], JSON.stringify(rows));
});

test('log lines carry the CST time (cst) beside the UTC time field, the same instant', () => {
  const log = memoryLogger();
  log.info('hello');
  const line = JSON.parse(log.lines[0]!) as { time: string; cst: string };
  assert.match(line.cst, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+08:00$/);
  assert.is(Date.parse(line.cst), Date.parse(line.time));
});

test.run();
