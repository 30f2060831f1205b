/**
 * Audit recovery honest about power cuts, and integrity alarms for what a power cut cannot do (issue #13,
 * items 3 and 5): a torn group-commit write ends in a chain that verifies and names the lost seqs; a
 * truncated chain, an edited or deleted head, a deleted audit folder are alarms after a restart, never
 * "intact"; an edit stays an edit.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AuditTrail, sealDoc, type AuditEvent } from '../src/ops/audit.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { macCard } from './helpers/mac-card.ts';

const card = macCard();

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'ehc-audit-rec-'));
}
const ev = (i: number): AuditEvent => ({ kind: 'admin', action: 'test', detail: { i } });

/** an outside anchor as the outbox keeps it */
function memoryAnchor(): { read(): string | undefined; write(t: string): void; text?: string } {
  const a: { read(): string | undefined; write(t: string): void; text?: string } = {
    read: () => a.text,
    write: (t: string) => void (a.text = t),
  };
  return a;
}

async function open(dir: string, anchor?: ReturnType<typeof memoryAnchor>): Promise<AuditTrail> {
  return AuditTrail.open({ dir, card, macKey: card.index, ...(anchor ? { anchor } : {}) });
}

async function chain(dir: string, n: number, anchor?: ReturnType<typeof memoryAnchor>): Promise<void> {
  const t = await open(dir, anchor);
  for (let i = 0; i < n; i++) await t.append(ev(i));
  await t.close();
}

function dayFile(dir: string): string {
  const f = readdirSync(dir).filter((n) => n.startsWith('audit-')).sort();
  return path.join(dir, f[f.length - 1]!);
}

/** head.json as a power cut leaves it: sealed at seq `seq` by the running appliance (not by a clean close) */
async function headAt(dir: string, seq: number): Promise<void> {
  const line = readFileSync(dayFile(dir), 'utf8').split('\n').find((l) => l.startsWith(`{"seq":${seq},`))!;
  const rec = JSON.parse(line);
  writeFileSync(path.join(dir, 'head.json'), await sealDoc(card, card.index, { seq, mac: rec.mac, time: rec.time }));
}

test('a torn group-commit write (NULs, then the tail of a record, then whole records) is cut; the chain verifies and names the lost seqs', async () => {
  const dir = tmp();
  await chain(dir, 18);
  const file = dayFile(dir);
  const ls = readFileSync(file, 'utf8').split('\n').slice(0, 18);
  await headAt(dir, 10);
  // records 13..18 were one group write; only its second half reached the disk: 13, 14 and most of 15 are NULs
  const lost = ls.slice(12, 15).join('\n') + '\n';
  const tailOf15 = ls[14]!.slice(-40) + '\n';
  const nul = Buffer.alloc(Buffer.byteLength(lost) - Buffer.byteLength(tailOf15), 0);
  writeFileSync(file, Buffer.concat([Buffer.from(ls.slice(0, 12).join('\n') + '\n'), nul, Buffer.from(tailOf15), Buffer.from(ls.slice(15).join('\n') + '\n')]));
  const before = await verifyAuditChain(dir, card, card.index);
  assert.not.ok(before.ok, 'before recovery the damage is visible');

  const t = await open(dir);
  assert.equal(t.integrityAlarms(), [], 'a power cut is not tampering');
  const next = await t.append(ev(99));
  await t.close();
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
  assert.equal(report.alarms, []);
  assert.is(report.powerLosses.length, 1);
  assert.equal(report.powerLosses[0]!.lost, { from: 13, to: 18 });
  assert.match(report.powerLosses[0]!.message, /seq 13–18 not written/);
  assert.is(report.powerLosses[0]!.seq, 19);
  assert.is(next.seq, 20);
  // the cut bytes are kept beside the trail for an investigator
  const saved = readdirSync(dir).filter((n) => n.startsWith('recovered-'));
  assert.is(saved.length, 1);
  assert.ok(readFileSync(path.join(dir, saved[0]!)).includes(Buffer.from(ls[16]!)));
  // a second restart finds nothing to recover
  const again = await open(dir);
  await again.close();
  const r2 = await verifyAuditChain(dir, card, card.index);
  assert.ok(r2.ok);
  assert.is(r2.powerLosses.length, 1);
});

test('a restart does not launder a truncated trail: alarm record, status alarm, verify-audit lists it until acknowledged', async () => {
  const dir = tmp();
  await chain(dir, 30);
  const file = dayFile(dir);
  const ls = readFileSync(file, 'utf8').trimEnd().split('\n');
  writeFileSync(file, ls.slice(0, 27).join('\n') + '\n');
  const t = await open(dir);
  const alarms = t.integrityAlarms();
  assert.is(alarms.length, 1);
  assert.is(alarms[0]!.problem, 'truncated');
  assert.equal(alarms[0]!.missing, { from: 28, to: 30 });
  assert.is(t.state().alarms?.length, 1);
  await t.append(ev(1));
  await t.close();
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, 'the records that are there verify');
  assert.is(report.alarms.length, 1);
  assert.is(report.alarms[0]!.problem, 'truncated');
  assert.is(report.alarms[0]!.acknowledged, false);
  assert.equal(report.alarms[0]!.missing, { from: 28, to: 30 });
  // the alarm survives another restart in the trail; an admin acknowledges it
  const t2 = await open(dir);
  await t2.close();
  assert.is((await verifyAuditChain(dir, card, card.index)).alarms.filter((a) => !a.acknowledged).length, 1);
  const t3 = await open(dir);
  // (status alarms live in the running appliance; an acknowledgement is a signed record)
  await t3.raiseAlarm({ problem: 'truncated', message: 'raised again for the test' });
  const ack = await t3.acknowledgeAlarms('admin-1');
  assert.ok(ack);
  assert.equal(t3.integrityAlarms(), []);
  await t3.close();
  const r3 = await verifyAuditChain(dir, card, card.index);
  assert.is(r3.alarms.length, 2);
  assert.is(r3.alarms[1]!.acknowledged, true);
});

test('an edited head, a deleted head, a head deleted with the tail, a deleted folder: each an alarm after restart', async () => {
  // edited head
  let dir = tmp();
  await chain(dir, 10);
  const h = JSON.parse(readFileSync(path.join(dir, 'head.json'), 'utf8'));
  h.doc.seq = 5;
  writeFileSync(path.join(dir, 'head.json'), JSON.stringify(h));
  let t = await open(dir);
  assert.equal(t.integrityAlarms().map((a) => a.problem), ['head-invalid']);
  await t.close();
  assert.equal((await verifyAuditChain(dir, card, card.index)).alarms.map((a) => a.problem), ['head-invalid']);

  // deleted head
  dir = tmp();
  await chain(dir, 10);
  unlinkSync(path.join(dir, 'head.json'));
  t = await open(dir);
  assert.equal(t.integrityAlarms().map((a) => a.problem), ['head-missing']);
  await t.close();

  // head deleted together with the tail: the anchor outside the folder still knows
  dir = tmp();
  const anchor = memoryAnchor();
  await chain(dir, 10, anchor);
  unlinkSync(path.join(dir, 'head.json'));
  const ls = readFileSync(dayFile(dir), 'utf8').trimEnd().split('\n');
  writeFileSync(dayFile(dir), ls.slice(0, 7).join('\n') + '\n');
  t = await open(dir, anchor);
  assert.equal(t.integrityAlarms().map((a) => a.problem).sort(), ['head-missing', 'truncated']);
  assert.equal(t.integrityAlarms().find((a) => a.problem === 'truncated')!.missing, { from: 8, to: 10 });
  await t.close();
  const r = await verifyAuditChain(dir, card, card.index);
  assert.ok(r.ok, JSON.stringify(r.broken));
  assert.equal(r.alarms.map((a) => a.problem).sort(), ['head-missing', 'truncated']);

  // the whole audit folder deleted: no fresh chain at seq 1 without a word
  dir = tmp();
  const anchor2 = memoryAnchor();
  await chain(dir, 12, anchor2);
  rmSync(dir, { recursive: true });
  t = await open(dir, anchor2);
  assert.equal(t.integrityAlarms().map((a) => a.problem), ['audit-missing']);
  const first = await t.append(ev(0));
  assert.is(first.seq, 14, 'the chain goes on after the anchored seq (13 is the alarm record)');
  await t.close();
  const r2 = await verifyAuditChain(dir, card, card.index);
  assert.equal(r2.alarms.map((a) => [a.problem, a.missing]), [['audit-missing', { from: 1, to: 12 }]]);
});

test('an edited record stays an edit after a restart; bytes after a clean stop are an alarm, not a power cut', async () => {
  const dir = tmp();
  await chain(dir, 10);
  const file = dayFile(dir);
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace('"i":3', '"i":4'));
  const t = await open(dir);
  await t.close();
  const r = await verifyAuditChain(dir, card, card.index);
  assert.is(r.broken?.problem, 'edited');
  assert.is(r.broken?.seq, 4);

  const dir2 = tmp();
  await chain(dir2, 5);
  writeFileSync(dayFile(dir2), readFileSync(dayFile(dir2), 'utf8') + 'garbage written while stopped\n');
  const t2 = await open(dir2);
  assert.equal(t2.integrityAlarms().map((a) => a.problem), ['after-close']);
  await t2.close();
});

test.run();
