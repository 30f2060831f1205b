/**
 * A damaged data page in the outbox (issue #13, item 6): salvage delivers what is readable and names the
 * lost records by seq; the seq counter goes on after the highest seq the damaged file had assigned.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';
import { salvageOutbox, seqRanges } from '../src/store/salvage.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { testCard } from './fixtures/test-card.ts';
import { entry } from './fixtures/entries.ts';
import { main as queueMain } from '../tools/queue.ts';

const keys = { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac };
const limits = { maxRecords: 1_000_000, maxBytes: 1 << 30, maxAgeHours: 24 };

/** Overwrite one table-leaf page that holds outbox records (found by a serial in it) with garbage. */
function damageAPage(file: string, serial: string): number {
  const pageSize = 4096;
  const pages = statSync(file).size / pageSize;
  const fd = openSync(file, 'r+');
  try {
    const buf = Buffer.alloc(pageSize);
    for (let p = 2; p < pages; p++) {
      readSync(fd, buf, 0, pageSize, p * pageSize);
      if (buf[0] === 0x0d && buf.includes(Buffer.from(serial))) {
        writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, p * pageSize);
        return p;
      }
    }
  } finally {
    closeSync(fd);
  }
  throw new Error('no page found');
}

test('salvage: readable records delivered, the damaged page named by seq, the counter not reused', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-salvage-'));
  const file = path.join(dir, 'outbox.sqlite');
  const card = await testCard(path.join(dir, 'card.keys.json'));
  let ob = SqliteOutbox.open({ file, card, keys, limits });
  const n = 600;
  const seqs = await Promise.all(Array.from({ length: n }, (_, i) => ob.append(entry(i))));
  // deliver the first 50: deleted rows are not "lost"
  for (const s of seqs.slice(0, 50)) await ob.ack(s, { status: 'delivered', retCode: '0000' });
  await ob.close();
  const page = damageAPage(file, 'OVN0000000300');
  assert.ok(page > 1);
  // the damage stops a plain read (tried on a copy, so the accounting below stays exact)
  const copy = path.join(dir, 'copy.sqlite');
  copyFileSync(file, copy);
  ob = SqliteOutbox.open({ file: copy, card, keys, limits });
  let failed = false;
  try {
    for (let left = n; left > 0; ) {
      const batch = await ob.peek(100);
      if (batch.length === 0) break;
      for (const e of batch) await ob.ack(e.seq, { status: 'delivered', retCode: '0000' });
      left -= batch.length;
    }
  } catch (err) {
    failed = /malformed|corrupt/i.test(String((err as Error).message) + String((err as { code?: string }).code));
  }
  await ob.close().catch(() => {});
  assert.ok(failed, 'replay cannot get past the damaged page');

  const report = await salvageOutbox(file);
  assert.ok(report.lostSeqs.length > 0, 'some records were on the page');
  assert.ok(report.lostSeqs.includes(301), `seq 301 (serial …300) was on it: ${seqRanges(report.lostSeqs)}`);
  assert.ok(existsSync(report.damagedCopy), 'the damaged file is kept');
  assert.is(report.highestSeq, n);
  assert.not.match(report.damage, /^ok$/);

  ob = SqliteOutbox.open({ file, card, keys, limits });
  assert.is(ob.integrityCheck(), 'ok');
  const delivered = new Set<string>();
  for (;;) {
    const batch = await ob.peek(100);
    if (batch.length === 0) break;
    for (const e of batch) {
      delivered.add(e.biz.out_verify_no);
      await ob.ack(e.seq, { status: 'delivered', retCode: '0000' });
    }
  }
  assert.is(delivered.size, report.records, 'every salvaged record opens (MAC intact) and is delivered');
  for (const s of report.lostSeqs) assert.not.ok(delivered.has(`OVN${String(s - 1).padStart(10, '0')}`));
  // every record acknowledged and not yet delivered is either delivered now or named as lost
  assert.is(delivered.size + report.lostSeqs.length, n - 50);
  const next = await ob.append(entry(9999));
  assert.is(next, n + 1, 'no seq is used twice');
  await ob.close();
});

test('ehc-edge queue salvage --db: names the lost seqs and exits 1', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-salvage-cli-'));
  const file = path.join(dir, 'outbox.sqlite');
  const card = await testCard(path.join(dir, 'card.keys.json'));
  const ob = SqliteOutbox.open({ file, card, keys, limits });
  await Promise.all(Array.from({ length: 300 }, (_, i) => ob.append(entry(i))));
  await ob.close();
  damageAPage(file, 'OVN0000000150');
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  let code: number;
  try {
    code = await queueMain(['salvage', '--db', file, '--lang', 'en']);
  } finally {
    console.log = log;
  }
  assert.is(code, 1);
  const text = out.join('\n');
  assert.match(text, /LOST \d+ records \(on damaged pages\): seq \d+/);
  assert.match(text, /salvaged \d+ records/);
  // a healthy file now: nothing lost
  console.log = () => {};
  try {
    assert.is(await queueMain(['salvage', '--db', file]), 0);
  } finally {
    console.log = log;
  }
});

test('seqRanges folds runs', () => {
  assert.is(seqRanges([1, 2, 3, 7, 9, 10]), '1–3, 7, 9–10');
  assert.is(seqRanges([]), '');
});

test.run();
