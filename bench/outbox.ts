/**
 * Outbox benchmark (npm run bench; or `node --import tsx bench/outbox.ts`):
 *  - raw one-fsync-per-append rate of the same disk, same run (fs.writeSync + fs.fsyncSync loop)
 *  - SqliteOutbox durable appends/s with a 100k and a 1M backlog, 1 producer and 64 producers
 *  - the alternatives: SQLite without group commit, an append-only JSON-lines file with one fsync
 *    per batch, lowdb 7 (JSONFile: rewrites the whole file per write, never fsyncs)
 *  - replay rate against a fake upstream on loopback HTTP
 *  - RSS of a fresh process that opens the 1M backlog outbox, peeks and appends
 *  - the kill -9 harness, BENCH_KILLS times (default 100)
 * Targets: 1 producer ≥ 50% of raw fsync/s; 64 producers ≥ 2× raw; RSS ≤ 150 MB at 1M.
 * BENCH_DIR picks the disk (default: the OS temp folder); BENCH_QUICK=1 shrinks it for a smoke run.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSONFilePreset } from 'lowdb/node';
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';
import { Replay } from '../src/store/replay.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { createLogger } from '../src/platform/log.ts';
import type { OutboxEntry } from '../src/store/outbox.ts';
import { testCard } from '../test/fixtures/test-card.ts';
import { entry } from '../test/fixtures/entries.ts';
import { FakeUpstreamClient, startFakeUpstream } from '../test/fixtures/fake-upstream.ts';
import { runCrashHarness } from '../test/fixtures/crash-harness.ts';
import { runIfMain } from './lib.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const keys = { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac };
const limits = { maxRecords: 10_000_000, maxBytes: 8 * 2 ** 30, maxAgeHours: 720 };
const quiet = createLogger({ level: 'error' });
const say = (line: string) => process.stderr.write(line + '\n');
const round = (n: number) => Math.round(n);

/** Raw rate of the disk: one small write + fsync per "append", no batching. */
function rawFsyncPerSec(dir: string, ms: number): number {
  const file = path.join(dir, 'raw-fsync.bin');
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(512, 0x5a);
  let n = 0;
  const end = Date.now() + ms;
  try {
    while (Date.now() < end) {
      writeSync(fd, buf);
      fsyncSync(fd);
      n++;
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return (n * 1000) / ms;
}

/** Closed-loop producers: each appends, waits for the durable ack, appends again. */
async function producersRate(append: (e: OutboxEntry) => Promise<unknown>, producers: number, ms: number, prefix: string): Promise<number> {
  let n = 0;
  let k = 0;
  const end = Date.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (Date.now() < end) {
        await append(entry(k++, 'usage', prefix));
        n++;
      }
    }),
  );
  return (n * 1000) / (performance.now() - t0);
}

/**
 * One producer against the raw fsync rate, alternating `rounds` slices of `sliceMs` each, so both see
 * the same moments of a disk whose speed drifts; returns the rates over all slices.
 */
async function pairedOneProducer(outbox: SqliteOutbox, dir: string, rounds: number, sliceMs: number, prefix: string) {
  let rawSum = 0;
  let oneSum = 0;
  const slices: Array<[number, number]> = [];
  await producersRate((e) => outbox.append(e), 1, 300, `${prefix}warm-`); // JIT, statements, WAL in use
  for (let r = 0; r < rounds; r++) {
    const raw = rawFsyncPerSec(dir, sliceMs);
    const one = await producersRate((e) => outbox.append(e), 1, sliceMs, `${prefix}${r}-`);
    rawSum += raw;
    oneSum += one;
    slices.push([round(raw), round(one)]);
  }
  return { raw: rawSum / rounds, one: oneSum / rounds, slices };
}

/** Fill to `target` records through the real append path (sealed, group-committed), 4096 in flight. */
async function fill(outbox: SqliteOutbox, target: number, prefix: string): Promise<void> {
  let next = outbox.stats().depth;
  const t0 = Date.now();
  let lastSay = t0;
  await Promise.all(
    Array.from({ length: 4096 }, async () => {
      while (next < target) {
        const i = next++;
        await outbox.append(entry(i, 'usage', prefix));
        if (Date.now() - lastSay > 5000) {
          lastSay = Date.now();
          say(`  filling backlog: ${i}/${target}`);
        }
      }
    }),
  );
  say(`  backlog of ${target} filled in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Append-only JSON lines with group commit (one write + fsync per batch): the fastest durable design. */
function jsonlOutbox(file: string) {
  const fd = openSync(file, 'a');
  let queue: { line: string; resolve: () => void }[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const batch = queue;
    queue = [];
    writeSync(fd, batch.map((b) => b.line).join(''));
    fsyncSync(fd);
    for (const b of batch) b.resolve();
  };
  return {
    append(e: OutboxEntry): Promise<void> {
      return new Promise((resolve) => {
        queue.push({ line: JSON.stringify(e) + '\n', resolve });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    close: () => closeSync(fd),
  };
}

async function lowdbRate(dir: string, backlog: number, producers: number, ms: number): Promise<number> {
  const file = path.join(dir, `lowdb-${backlog}-${producers}.json`);
  const db = await JSONFilePreset<{ outbox: OutboxEntry[] }>(file, { outbox: [] });
  db.data.outbox = Array.from({ length: backlog }, (_, i) => entry(i, 'usage', 'LOW'));
  await db.write();
  const rate = await producersRate((e) => db.update((d) => void d.outbox.push(e)), producers, ms, `LOWP${producers}-`);
  rmSync(file, { force: true });
  return rate;
}

async function replayRate(outbox: SqliteOutbox, ms: number): Promise<{ perSec: number; delivered: number }> {
  const upstream = await startFakeUpstream();
  const client = new FakeUpstreamClient(upstream.url);
  const replay = new Replay({ outbox, upstream: client, log: quiet, batch: 64 }).start();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  await replay.stop();
  const secs = (performance.now() - t0) / 1000;
  const delivered = replay.status().delivered;
  await client.close();
  await upstream.close();
  return { perSec: delivered / secs, delivered };
}

function rssOfFreshProcess(db: string, keyFile: string): { rssMb: number; depth: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'outbox-rss-child.ts'), db, keyFile], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

export async function run(): Promise<Record<string, unknown>> {
  const quick = process.env.BENCH_QUICK === '1';
  const base = process.env.BENCH_DIR ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(path.join(base, 'ehc-outbox-bench-'));
  const phaseMs = quick ? 1000 : 3000;
  const backlogs = quick ? [10_000, 50_000] : [100_000, 1_000_000];
  const keyFile = path.join(dir, 'card.keys.json');
  const kills = Number(process.env.BENCH_KILLS ?? (quick ? 5 : 100));
  const result: Record<string, unknown> = { dir, disk: execFileSync('df', ['--output=source,fstype', dir], { encoding: 'utf8' }).split('\n')[1]?.trim() };
  try {
    const rawBefore = rawFsyncPerSec(dir, 2000);
    say(`raw one-fsync-per-append: ${round(rawBefore)}/s`);
    const appends: { ok: boolean; [k: string]: unknown }[] = [];
    let replay: { perSec: number; delivered: number } | undefined;
    let rss: { rssMb: number; depth: number } | undefined;
    for (const backlog of backlogs) {
      const file = path.join(dir, `outbox-${backlog}.sqlite`);
      const filling = SqliteOutbox.open({ file, card: await testCard(keyFile), keys, limits, log: quiet });
      await fill(filling, backlog, `B${backlog}-`);
      // a backlog at rest, as after an outage and a restart: close (SQLite checkpoints the WAL into the
      // database), let the kernel write the fill's pages out, reopen — so the figures below measure
      // appends, not the writeback of the hundreds of MB the fill left dirty
      await filling.close();
      execFileSync('sync');
      const ob = SqliteOutbox.open({ file, card: await testCard(keyFile), keys, limits, log: quiet });
      await ob.ready();
      // the disk's rate wanders (shared virtual disk): 1 producer and raw fsync alternate in short
      // slices in the same folder, and the ratio is that of their sums
      const paired = await pairedOneProducer(ob, dir, quick ? 2 : 4, 750, `P1-${backlog}-`);
      const one = paired.one;
      const many = await producersRate((e) => ob.append(e), 64, phaseMs, `P64-${backlog}-`);
      const rawB = rawFsyncPerSec(dir, 1500);
      const rawHere = paired.raw;
      const row = {
        backlog,
        rawFsyncPerSec: round(rawHere),
        rawFsyncPerSecAfter64: round(rawB),
        producers1PerSec: round(one),
        producers64PerSec: round(many),
        producers1VsRaw: +(one / rawHere).toFixed(2),
        producers1Slices: paired.slices,
        producers64VsRaw: +(many / Math.max(rawHere, rawB)).toFixed(2),
        ok: one >= 0.5 * rawHere && many >= 2 * Math.max(rawHere, rawB),
        bytes: ob.stats().bytes,
      };
      appends.push(row);
      say(`sqlite outbox, backlog ${backlog}: 1 producer ${round(one)}/s (${row.producers1VsRaw}× raw), 64 producers ${round(many)}/s (${row.producers64VsRaw}× raw), raw ${round(rawHere)}/s`);
      if (backlog === backlogs[0]) {
        replay = await replayRate(ob, phaseMs * 2);
        say(`replay to loopback HTTP fake upstream: ${round(replay.perSec)}/s (${replay.delivered} delivered)`);
      }
      await ob.close();
      if (backlog === backlogs[backlogs.length - 1]) {
        rss = rssOfFreshProcess(file, keyFile);
        say(`RSS of a fresh process with a ${rss.depth} backlog: ${rss.rssMb} MB`);
      }
      rmSync(file, { force: true });
      rmSync(file + '-wal', { force: true });
      rmSync(file + '-shm', { force: true });
    }

    // alternatives, same disk, same run
    const noGroupFile = path.join(dir, 'nogroup.sqlite');
    const noGroup = SqliteOutbox.open({ file: noGroupFile, card: await testCard(keyFile), keys, limits, log: quiet, maxBatch: 1 });
    const ng1 = await producersRate((e) => noGroup.append(e), 1, phaseMs, 'NG1-');
    const ng64 = await producersRate((e) => noGroup.append(e), 64, phaseMs, 'NG64-');
    await noGroup.close();
    say(`sqlite, one transaction per append (no group commit): 1 producer ${round(ng1)}/s, 64 producers ${round(ng64)}/s`);
    const jl = jsonlOutbox(path.join(dir, 'outbox.jsonl'));
    const jl1 = await producersRate((e) => jl.append(e), 1, phaseMs, 'JL1-');
    const jl64 = await producersRate((e) => jl.append(e), 64, phaseMs, 'JL64-');
    jl.close();
    say(`append-only JSON lines, fsync per batch: 1 producer ${round(jl1)}/s, 64 producers ${round(jl64)}/s (no delete/ack, no encryption)`);
    const low0 = await lowdbRate(dir, 0, 64, phaseMs);
    const low10k = await lowdbRate(dir, 10_000, 64, phaseMs);
    say(`lowdb 7 JSONFile (no fsync, whole-file rewrite), 64 producers: empty ${round(low0)}/s, 10k backlog ${round(low10k)}/s`);

    const rawAfter = rawFsyncPerSec(dir, 2000);
    const raw = (rawBefore + rawAfter) / 2;
    say(`raw one-fsync-per-append again: ${round(rawAfter)}/s (mean ${round(raw)}/s)`);

    say(`kill -9 harness: ${kills} kills …`);
    const crash = await runCrashHarness({ kills, producers: 8, maxRunMs: 400, onProgress: (l) => {
      if (/^kill \d*0\//.test(l)) say(`  ${l}`);
    } });
    say(`kill -9 harness: ${JSON.stringify(crash)}`);

    const targetsMet = appends.every((a) => a.ok);
    Object.assign(result, {
      rawFsyncPerSec: { before: round(rawBefore), after: round(rawAfter), mean: round(raw) },
      sqliteOutbox: appends,
      targetsMet,
      replayPerSec: replay ? round(replay.perSec) : null,
      rss1M: rss,
      rssOk: rss ? rss.rssMb <= 150 : null,
      alternatives: {
        sqliteNoGroupCommit: { producers1PerSec: round(ng1), producers64PerSec: round(ng64) },
        jsonlFsyncPerBatch: { producers1PerSec: round(jl1), producers64PerSec: round(jl64) },
        lowdbNoFsync: { producers64Empty: round(low0), producers64Backlog10k: round(low10k) },
      },
      crash,
    });
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
