import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, existsSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AuditTrail, localDay, sealDoc, type AuditEvent } from '../src/ops/audit.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { macCard } from './helpers/mac-card.ts';
import { auditOffline } from '../src/ops/audit-offline.ts';
import { AuditDayFiles } from '../src/ops/audit-day-files.ts';
import { GroupCommitWriter, type ChainedRecord } from '../src/ops/audit-group-commit.ts';
import { parseConfig } from '../src/config/load.ts';
import { population, findClearPii } from './helpers/population.ts';
import { memoryLogger } from '../src/platform/log.ts';

const people = population(20, 11);
const card = macCard();

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'ehc-audit-'));
}

function verification(i: number): AuditEvent {
  const p = people[i % people.length]!;
  return {
    kind: 'verify',
    action: 'verify',
    route: i % 3 === 0 ? 'offline-local' : 'local',
    terminal: '3502A0001STMA0001',
    scanner: `serial:/dev/ttyS${i % 2}`,
    operator: 'op-07',
    retCode: '0000',
    subject: { name: p.name, idType: p.idType, idNo: p.idNo, phone: p.phone, ehealthCode: 'A1B2C3D4E5F60718293A4B5C6D7E8F90:0:00' },
  };
}

async function writeChain(dir: string, n: number, clock?: () => Date): Promise<void> {
  const trail = await AuditTrail.open({ dir, card, macKey: card.index, clock });
  await Promise.all(Array.from({ length: n }, (_, i) => trail.append(verification(i))));
  await trail.close();
}

/** head.json as a running appliance leaves it at a power cut (not sealed by a clean close) */
async function asIfCrashed(dir: string): Promise<void> {
  const f = path.join(dir, 'head.json');
  const { doc } = JSON.parse(readFileSync(f, 'utf8'));
  delete doc.closed;
  writeFileSync(f, await sealDoc(card, card.index, doc));
}

function dayFile(dir: string): string {
  const f = readdirSync(dir).filter((n) => n.startsWith('audit-')).sort();
  return path.join(dir, f[f.length - 1]!);
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').trimEnd().split('\n');
}

test('records are chained, numbered in order, durable, and hold only masked subjects', async () => {
  const dir = tmp();
  await writeChain(dir, 30);
  const ls = lines(dayFile(dir));
  assert.is(ls.length, 30);
  const recs = ls.map((l) => JSON.parse(l));
  assert.equal(recs.map((r) => r.seq), Array.from({ length: 30 }, (_, i) => i + 1));
  assert.is(recs[0].prev, '0'.repeat(64));
  assert.is(recs[1].prev, recs[0].mac);
  const p = people[0]!;
  assert.is(recs[0].subject.id_no, p.idNo.slice(0, 4) + '*'.repeat(10) + p.idNo.slice(-4));
  assert.is(Array.from(recs[0].subject.name as string)[1], '*');
  assert.is(recs[0].route, 'offline-local');
  assert.is(recs[0].terminal, '3502A0001STMA0001');
  assert.is(recs[0].ret_code, '0000');
  assert.equal(findClearPii(readFileSync(dayFile(dir), 'utf8'), people), []);
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
  assert.is(report.records, 30);
  assert.is(report.lastSeq, 30);
});

test('an edited record is detected and named', async () => {
  const dir = tmp();
  await writeChain(dir, 12);
  const file = dayFile(dir);
  const ls = lines(file);
  ls[6] = ls[6]!.replace('"ret_code":"0000"', '"ret_code":"2001"');
  writeFileSync(file, ls.join('\n') + '\n');
  const report = await verifyAuditChain(dir, card, card.index);
  assert.not.ok(report.ok);
  assert.is(report.broken?.problem, 'edited');
  assert.is(report.broken?.seq, 7);
  assert.is(report.broken?.line, 7);
  assert.match(report.broken!.message, /seq 7 .*altered/);
});

test('a deleted record is detected and named', async () => {
  const dir = tmp();
  await writeChain(dir, 12);
  const file = dayFile(dir);
  const ls = lines(file);
  ls.splice(4, 1); // seq 5
  writeFileSync(file, ls.join('\n') + '\n');
  const report = await verifyAuditChain(dir, card, card.index);
  assert.is(report.broken?.problem, 'deleted');
  assert.is(report.broken?.seq, 5);
  assert.match(report.broken!.message, /seq 5 is missing/);
});

test('reordered records are detected and named', async () => {
  const dir = tmp();
  await writeChain(dir, 12);
  const file = dayFile(dir);
  const ls = lines(file);
  [ls[8], ls[9]] = [ls[9]!, ls[8]!]; // seq 9 and 10 swapped
  writeFileSync(file, ls.join('\n') + '\n');
  const report = await verifyAuditChain(dir, card, card.index);
  assert.is(report.broken?.problem, 'reordered');
  assert.is(report.broken?.seq, 10);
  assert.is(report.broken?.line, 9);
  assert.match(report.broken!.message, /seq 10 .*out of order: seq 9 was expected/);
});

test('a cut tail is detected through the sealed head, a forged head through its MAC', async () => {
  const dir = tmp();
  await writeChain(dir, 10);
  const file = dayFile(dir);
  const ls = lines(file);
  writeFileSync(file, ls.slice(0, 8).join('\n') + '\n');
  const report = await verifyAuditChain(dir, card, card.index);
  assert.is(report.broken?.problem, 'truncated');
  assert.is(report.broken?.seq, 9);
  const head = JSON.parse(readFileSync(path.join(dir, 'head.json'), 'utf8'));
  head.doc.seq = 8;
  writeFileSync(path.join(dir, 'head.json'), JSON.stringify(head));
  assert.is((await verifyAuditChain(dir, card, card.index)).broken?.problem, 'anchor');
});

test('another key does not verify (edited at the first record)', async () => {
  const dir = tmp();
  await writeChain(dir, 3);
  const other = macCard();
  const report = await verifyAuditChain(dir, other, other.index);
  assert.is(report.broken?.problem, 'edited');
  assert.is(report.broken?.seq, 1);
});

test('the chain continues across restarts and day files, and the clock stepping back never reopens an old day', async () => {
  const dir = tmp();
  // day files are China days (CST), whatever TZ the test runs under
  let now = new Date('2026-01-10T23:59:00+08:00');
  const clock = () => now;
  await writeChain(dir, 5, clock);
  now = new Date('2026-01-11T00:01:00+08:00');
  await writeChain(dir, 5, clock);
  now = new Date('2026-01-10T23:58:00+08:00'); // NTP stepped back across midnight
  await writeChain(dir, 2, clock);
  const files = readdirSync(dir).filter((n) => n.startsWith('audit-')).sort();
  assert.equal(files, ['audit-20260110.jsonl', 'audit-20260111.jsonl']);
  assert.is(lines(path.join(dir, files[0]!)).length, 5);
  assert.is(lines(path.join(dir, files[1]!)).length, 7);
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
  assert.is(report.lastSeq, 12);
  // deleting a whole day in the middle is a deletion
  writeFileSync(path.join(dir, 'audit-20260111.jsonl'), '');
  const cut = await verifyAuditChain(dir, card, card.index);
  assert.is(cut.broken?.problem, 'truncated');
});

test('retention deletes days past retainDays, anchors the kept chain, and deleting the oldest kept day is still caught', async () => {
  const dir = tmp();
  let now = new Date(2025, 0, 1, 12);
  const clock = () => now;
  for (const d of [1, 2, 3]) {
    now = new Date(2025, 0, d, 12);
    await writeChain(dir, 3, clock);
  }
  now = new Date(2026, 1, 2, 12); // 397 days after Jan 1, 2025
  const trail = await AuditTrail.open({ dir, card, macKey: card.index, clock, retainDays: 395 });
  await trail.append(verification(1));
  await trail.close();
  const files = readdirSync(dir).filter((n) => n.startsWith('audit-')).sort();
  assert.equal(files, ['audit-20250103.jsonl', 'audit-20260202.jsonl']);
  assert.ok(existsSync(path.join(dir, 'anchor.json')));
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
  assert.is(report.firstSeq, 7);
  const pruned = lines(path.join(dir, 'audit-20260202.jsonl')).map((l) => JSON.parse(l)).find((r) => r.action === 'audit.pruned');
  assert.ok(pruned, 'an audit.pruned record says what went');
  writeFileSync(path.join(dir, 'audit-20250103.jsonl'), '');
  assert.is((await verifyAuditChain(dir, card, card.index)).broken?.problem, 'deleted');
});

test('the size cap deletes the oldest days (never today) and records it', async () => {
  const dir = tmp();
  let now = new Date(2026, 2, 1, 12);
  const clock = () => now;
  for (const d of [1, 2, 3, 4]) {
    now = new Date(2026, 2, d, 12);
    await writeChain(dir, 20, clock);
  }
  const size = readFileSync(path.join(dir, 'audit-20260301.jsonl')).length;
  const trail = await AuditTrail.open({ dir, card, macKey: card.index, clock, maxBytes: Math.floor(size * 2.5) });
  await trail.append(verification(2));
  await trail.close();
  const files = readdirSync(dir).filter((n) => n.startsWith('audit-')).sort();
  assert.equal(files, ['audit-20260303.jsonl', 'audit-20260304.jsonl']);
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
});

/** The test card, refusing only the MAC of a prune's anchor (the card hiccups at that one call). */
function cardRefusingAnchorSeal(): typeof card {
  return { ...card, hmacSm3: async (k: number, data: Uint8Array) => {
    if (Buffer.from(data).includes('"prunedAt"')) throw new Error('card busy');
    return card.hmacSm3(k, data);
  } };
}

test('a failed prune after a write leaves that write\'s durable records in place, and the chain goes on from them', async () => {
  const dir = tmp();
  let now = new Date(2026, 2, 1, 12);
  const clock = () => now;
  await writeChain(dir, 20, clock);
  const size = readFileSync(path.join(dir, 'audit-20260301.jsonl')).length;
  // the anchor's seal fails (the card hiccups): the new day's first write takes the folder over its cap and prunes
  const failingAnchor = cardRefusingAnchorSeal();
  now = new Date(2026, 2, 2, 12);
  const trail = await AuditTrail.open({ dir, card: failingAnchor, macKey: card.index, clock, maxBytes: size + 10 });
  const a = await trail.append(verification(1));
  await trail.flush();
  const b = await trail.append(verification(2));
  assert.is(trail.state().pruneFailures, 1, 'the failed prune is counted');
  assert.is(trail.state().failures, 0, 'and not as a failed append');
  await trail.close();
  const kept = lines(path.join(dir, 'audit-20260302.jsonl')).map((l) => JSON.parse(l).seq);
  assert.equal(kept, [a.seq, b.seq], 'the record resolved before the prune is still on disk');
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
});

test('an open whose prune fails (the anchor\'s seal: the card hiccups) goes on degraded: logged, counted in state, the trail writes, the old day stays', async () => {
  const dir = tmp();
  let now = new Date(2026, 2, 1, 12);
  const clock = () => now;
  await writeChain(dir, 20, clock);
  const size = readFileSync(path.join(dir, 'audit-20260301.jsonl')).length;
  now = new Date(2026, 2, 2, 12);
  await writeChain(dir, 20, clock);
  // over the cap at open: open's prune seals the anchor, and the card refuses that one MAC
  const failingAnchor = cardRefusingAnchorSeal();
  const logger = memoryLogger();
  const trail = await AuditTrail.open({ dir, card: failingAnchor, macKey: card.index, clock, maxBytes: size + 10, logger });
  const st = trail.state();
  assert.is(st.pruneFailures, 1);
  assert.match(st.lastPruneError ?? '', /card busy/);
  assert.is(st.writable, true);
  assert.is(st.failures, 0, 'a failed prune is not a failed append');
  assert.ok(logger.lines.some((l) => /pruning failed/.test(l) && /card busy/.test(l)), logger.lines.join('\n'));
  await trail.append(verification(1));
  await trail.close();
  assert.ok(existsSync(path.join(dir, 'audit-20260301.jsonl')), 'the day the failed prune meant to delete is still there');
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
  // the next open with a card that answers prunes it
  const again = await AuditTrail.open({ dir, card, macKey: card.index, clock, maxBytes: size + 10 });
  assert.is(again.state().pruneFailures, 0);
  await again.close();
  assert.not.ok(existsSync(path.join(dir, 'audit-20260301.jsonl')));
  assert.ok((await verifyAuditChain(dir, card, card.index)).ok);
});

test('an open that fails after taking the writer lock (its recovery\'s head, here the outbox anchor) lets go of the lock: the next open in the same process is not refused', async () => {
  const dir = tmp();
  await writeChain(dir, 20);
  const anchor = { read: () => undefined, write: () => { throw new Error('outbox disk full'); } };
  await AuditTrail.open({ dir, card, macKey: card.index, anchor }).then(
    () => assert.unreachable('open with a failing head write succeeded'),
    (e: Error) => assert.match(e.message, /outbox disk full/),
  );
  assert.not.ok(existsSync(path.join(dir, 'writer.lock')), 'the failed open left its writer.lock behind');
  const again = await AuditTrail.open({ dir, card, macKey: card.index });
  await again.append(verification(1));
  await again.close();
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
});

test('a torn last line from a crash is cut on open, noted in the trail, and the chain verifies', async () => {
  const dir = tmp();
  await writeChain(dir, 4);
  await asIfCrashed(dir);
  appendFileSync(dayFile(dir), '{"seq":5,"time":"2026-');
  const progress: number[] = [];
  const torn = await verifyAuditChain(dir, card, card.index, { onProgress: (p) => progress.push(p.fileIndex) });
  assert.ok(torn.ok, 'an unterminated tail is a write in progress, not a record');
  assert.is(torn.unterminatedTail, true);
  assert.is(torn.lastSeq, 4);
  await writeChain(dir, 1);
  const recs = lines(dayFile(dir)).map((l) => JSON.parse(l));
  assert.ok(recs.some((r) => r.action === 'audit.recovered'));
  const report = await verifyAuditChain(dir, card, card.index, { onProgress: (p) => progress.push(p.fileIndex) });
  assert.ok(report.ok, JSON.stringify(report.broken));
  assert.is(report.lastSeq, 6);
  assert.not.ok(report.unterminatedTail);
  assert.ok(progress.length >= 1);
  // garbage that is a whole line is not a record
  appendFileSync(dayFile(dir), 'not a record\n');
  const bad = await verifyAuditChain(dir, card, card.index);
  assert.is(bad.broken?.problem, 'malformed');
  assert.is(bad.broken?.line, 7);
});

test('a card failure rejects that append and leaves the chain intact', async () => {
  const dir = tmp();
  let fail = false;
  const flaky = { async hmacSm3(k: number, d: Uint8Array) { if (fail) throw new Error('card removed'); return card.hmacSm3(k, d); } };
  const trail = await AuditTrail.open({ dir, card: flaky, macKey: card.index });
  await trail.append(verification(0));
  fail = true;
  await trail.append(verification(1)).then(() => assert.unreachable('should reject'), (e: Error) => assert.match(e.message, /card removed/));
  fail = false;
  await trail.append(verification(2));
  assert.is(trail.state().failures, 1);
  await trail.close();
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok);
  assert.is(report.lastSeq, 2);
});

test('one writer: a second open is refused while the first is open; a dead writer\'s lock is taken over', async () => {
  const dir = tmp();
  const first = await AuditTrail.open({ dir, card, macKey: card.index });
  await AuditTrail.open({ dir, card, macKey: card.index }).then(
    () => assert.unreachable('second writer admitted'),
    (e: Error) => assert.match(e.message, /in use by process \d+: one writer only/),
  );
  await first.append(verification(0));
  await first.close();
  writeFileSync(path.join(dir, 'writer.lock'), '999999999\n'); // no such process
  const again = await AuditTrail.open({ dir, card, macKey: card.index });
  await again.append(verification(1));
  await again.close();
  assert.not.ok(existsSync(path.join(dir, 'writer.lock')));
  assert.ok((await verifyAuditChain(dir, card, card.index)).ok);
});

test('a record queued in any microtask after the chain or the writer last looked is still written, and flush() waits for it', async () => {
  const dir = tmp();
  const trail = await AuditTrail.open({ dir, card, macKey: card.index });
  let expected = 0;
  for (let ticks = 0; ticks < 60; ticks++) {
    // the chain (MAC) winds down a few microtasks after a record is queued, the writer a few after a
    // write is durable: queue the next record 0…59 microtasks after each
    const durable = ticks % 2 === 1;
    const first = durable ? trail.append(verification(ticks)) : (trail.record(verification(ticks)), Promise.resolve());
    await first;
    for (let t = 0; t < ticks / 2; t++) await Promise.resolve();
    trail.record(verification(ticks + 1));
    expected += 2;
    const flushed = await Promise.race([trail.flush().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
    assert.ok(flushed, `flush() did not finish (second record queued after ${ticks} microtasks)`);
    assert.is(lines(dayFile(dir)).length, expected, `after ${ticks} microtasks`);
  }
  await trail.close();
  const report = await verifyAuditChain(dir, card, card.index);
  assert.ok(report.ok, JSON.stringify(report.broken));
  assert.is(report.lastSeq, expected);
});

test('a verification\'s serial is stored as it is, also one whose random part looks like a phone number', async () => {
  // a 20-cut power-cut run acknowledged these two and found no audit record naming them: the phone rule
  // had stored …486e195****3088 (src/platform/mask.ts SERIAL_SHAPE)
  const dir = tmp();
  const trail = await AuditTrail.open({ dir, card, macKey: card.index });
  const serials = ['20261202231536747486e19521953088', '202612022315369686eaf19710222036'];
  for (const s of serials) await trail.append({ ...verification(0), detail: { out_verify_no: s, code_type: 'dynamic' } });
  await trail.close();
  const text = readFileSync(dayFile(dir), 'utf8');
  for (const s of serials) assert.ok(text.includes(`"out_verify_no":"${s}"`), `${s} not in the trail`);
  assert.equal(findClearPii(text, people), []);
  assert.ok((await verifyAuditChain(dir, card, card.index)).ok);
});

test('group commit: a record queued while a write is on its way to disk resolves after its own fsync, never that one\'s', async () => {
  const dir = tmp();
  const trail = await AuditTrail.open({ dir, card, macKey: card.index });
  const write = AuditDayFiles.prototype.write;
  const durable: string[] = []; // what each completed write + fsync held
  let inFlight!: () => void;
  let release!: () => void;
  const entered = new Promise<void>((r) => (inFlight = r));
  const gate = new Promise<void>((r) => (release = r));
  let held = false;
  AuditDayFiles.prototype.write = async function (this: AuditDayFiles, buf: Buffer) {
    if (!held) {
      held = true;
      inFlight();
      await gate; // the first write stays on its way to disk until the second record is chained
    }
    await write.call(this, buf);
    durable.push(buf.toString());
  };
  try {
    const isDurable = (seq: number) => durable.some((d) => d.includes(`{"seq":${seq},`));
    const seen: Array<[number, boolean]> = [];
    const before = trail.state().lastSeq;
    const first = trail.append(verification(1)).then((r) => (seen.push([r.seq, isDurable(r.seq)]), r));
    await entered;
    const second = trail.append(verification(2)).then((r) => (seen.push([r.seq, isDurable(r.seq)]), r));
    while (trail.state().lastSeq < before + 2) await new Promise((r) => setImmediate(r)); // chained, waiting for the writer
    release();
    const [a, b] = await Promise.all([first, second]);
    assert.is(b.seq, a.seq + 1);
    assert.equal(seen, [[a.seq, true], [b.seq, true]], 'each resolved only once a write holding it was fsync\'d');
    assert.is(durable.length, 2, 'the second record went in a write of its own');
  } finally {
    AuditDayFiles.prototype.write = write;
    await trail.close();
  }
});

test('GroupCommitWriter: a record resolves only once a completed fsync holds it; a torn write is cut back off, what was chained on it fails, the next write goes on from the last durable record', async () => {
  // an in-memory day file: what each write + fsync left on "disk", a gate to hold a write on its way, a write torn half-way
  let disk = Buffer.alloc(0);
  const used: string[] = [];
  let hold: Promise<void> | undefined;
  let tear = false;
  const sink = {
    open: false,
    get size() {
      return disk.length;
    },
    async use(day: string) {
      used.push(day);
      const created = !sink.open;
      sink.open = true;
      return created;
    },
    async write(buf: Buffer) {
      if (hold) await hold;
      if (tear) {
        disk = Buffer.concat([disk, buf.subarray(0, buf.length >> 1)]);
        throw new Error('ENOSPC: no space left on device');
      }
      disk = Buffer.concat([disk, buf]);
    },
    async cut(size: number) {
      disk = disk.subarray(0, size);
    },
  };
  const rolled: number[] = [];
  const writer = new GroupCommitWriter(sink, { rolledBack: (to) => void rolled.push(to.seq) });
  writer.start({ seq: 0, mac: '0'.repeat(64), time: null }, '');
  const today = new Date('2026-12-02T08:00:00Z');
  const outcome = new Map<number, string>();
  const rec = (seq: number, date = today): ChainedRecord => {
    const line = `{"seq":${seq}}`;
    return {
      line, bytes: [Buffer.from(line + '\n')], seq, mac: String(seq).padStart(64, '0'), date, time: date.toISOString(), kind: 'verify', epoch: writer.epoch,
      done: () => void outcome.set(seq, disk.includes(`${line}\n`) ? 'durable' : 'resolved before its fsync'),
      fail: (e) => void outcome.set(seq, `failed: ${(e as Error).message}`),
    };
  };
  const turn = () => new Promise((r) => setImmediate(r));
  let release!: () => void;
  hold = new Promise((r) => (release = r));
  writer.add(rec(1));
  writer.kick();
  await turn();
  writer.add(rec(2)); // queued while the first write is on its way
  writer.add(rec(3, new Date('2026-12-01T08:00:00Z'))); // the clock stepped back a day: still today's file
  writer.kick();
  await turn();
  assert.equal([...outcome], [], 'nothing resolves while its write is on its way');
  hold = undefined;
  release();
  while (writer.busy) await writer.idle();
  assert.equal([...outcome], [[1, 'durable'], [2, 'durable'], [3, 'durable']]);
  assert.equal(used, ['20261202', '20261202'], 'two writes: the first alone, then the two queued during it; never the older day');
  const kept = disk.toString();

  hold = new Promise((r) => (release = r));
  tear = true;
  writer.add(rec(4));
  writer.kick();
  await turn();
  writer.add(rec(5)); // chained on top of 4 while 4's write is on its way
  hold = undefined;
  release();
  while (writer.busy) await writer.idle();
  assert.is(outcome.get(4), 'failed: ENOSPC: no space left on device');
  assert.match(outcome.get(5)!, /^failed: audit: not written, chained after a record whose write failed/);
  assert.is(disk.toString(), kept, 'the torn half line is cut back off');
  assert.equal(rolled, [3], 'the chain continues from the last durable record');
  assert.equal([writer.writable, writer.durable.seq, writer.epoch], [false, 3, 1]);

  tear = false;
  writer.add(rec(4)); // chained again, on the rewound chain
  writer.kick();
  while (writer.busy) await writer.idle();
  assert.is(outcome.get(4), 'durable');
  assert.is(disk.toString(), kept + '{"seq":4}\n');
  assert.equal([writer.writable, writer.durable.seq], [true, 4]);
});

test('a record that cannot be built (bad time, failing clock) is refused alone; the chain goes on without a gap', async () => {
  const dir = tmp();
  let clockFails = false;
  const clock = () => {
    if (clockFails) throw new Error('clock unavailable');
    return new Date();
  };
  const trail = await AuditTrail.open({ dir, card, macKey: card.index, clock });
  await trail.append(verification(1));
  await trail.append({ ...verification(2), time: new Date(Number.NaN) }).then(
    () => assert.unreachable('an invalid time is refused'),
    (e: Error) => assert.instance(e, RangeError),
  );
  clockFails = true;
  await trail.append(verification(3)).then(
    () => assert.unreachable('no time, no record'),
    (e: Error) => assert.match(e.message, /clock unavailable/),
  );
  clockFails = false;
  const after = await trail.append(verification(4));
  assert.is(after.seq, 2, 'the refused records took no seq');
  await trail.close();
  assert.is(lines(dayFile(dir)).length, 2);
  assert.ok((await verifyAuditChain(dir, card, card.index)).ok);
});

test('verifying while the appliance appends never reports a false break', async () => {
  const dir = tmp();
  const trail = await AuditTrail.open({ dir, card, macKey: card.index });
  let writing = true;
  const writer = (async () => {
    for (let i = 0; i < 150; i++) {
      await Promise.all([trail.append(verification(i)), trail.append(verification(i + 1))]);
    }
    writing = false;
  })();
  const reports = [];
  while (writing) reports.push(await verifyAuditChain(dir, card, card.index));
  await writer;
  await trail.close();
  reports.push(await verifyAuditChain(dir, card, card.index));
  assert.ok(reports.length >= 2);
  for (const r of reports) assert.ok(r.ok, JSON.stringify(r.broken));
  assert.is(reports[reports.length - 1]!.lastSeq, 300);
});

test('a tool audits a key operation while the appliance is stopped, and is refused while it runs', async () => {
  const dir = tmp();
  const doc = JSON.parse(readFileSync(new URL('../appliance.config.json', import.meta.url), 'utf8'));
  doc.stateDir = dir;
  const config = parseConfig(doc, path.join(dir, 'appliance.config.json'));
  const key = { ...macCard(card.key, config.card.keys.mac) };
  const [rec] = await auditOffline(config, key, [{ kind: 'key', action: 'key.import', detail: { roles: ['ehcid', 'validity'] } }]);
  assert.is(rec!.kind, 'key');
  assert.is(rec!.seq, 1);
  const running = await AuditTrail.open({ dir: path.join(dir, 'audit'), card: key, macKey: config.card.keys.mac });
  await auditOffline(config, key, [{ kind: 'key', action: 'key.import' }]).then(
    () => assert.unreachable('second writer'),
    (e: Error) => assert.match(e.message, /in use by process/),
  );
  await running.append(verification(0));
  await running.close();
  assert.is((await verifyAuditChain(path.join(dir, 'audit'), key, config.card.keys.mac)).lastSeq, 2);
});

test('localDay is the local calendar day', () => {
  assert.is(localDay(new Date(2026, 10, 5, 0, 0, 1)), '20261105');
});

test.run();
