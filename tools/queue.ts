/**
 * Operator tool for the outbox: inspect it, list / retry / export dead letters.
 *
 *   node --import tsx tools/queue.ts [--config FILE | --db FILE] status
 *   … dead [--limit N]                       dead letters (no personal data)
 *   … retry (--all | SEQ…)                   move dead letters back to the tail of the outbox
 *   … export [--out FILE] [--payload [--unmasked]]   dead letters as JSON lines (payload needs the card;
 *                                            masked unless --unmasked, which writes the file 0600)
 *
 * Works beside a running appliance (SQLite WAL; the appliance's replay picks retried records up by
 * its idle poll). Long work prints a progress line on stderr.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { configPathFrom, loadConfig } from '../src/config/load.ts';
import type { CardPrimitives } from '../src/crypto/card.ts';
import { openCard } from '../src/crypto/open-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { EhcError } from '../src/errors.ts';
import { maskDeep } from '../src/platform/mask.ts';
import { createLogger } from '../src/platform/log.ts';
import { outboxPath } from '../src/store/index.ts';
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';

/** A progress line on stderr: rewritten in place on a terminal, one line per ~2 s otherwise. */
export function progress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
  let last = 0;
  const line = (n: number) => `${label}: ${n}/${total} (${total ? Math.floor((n * 100) / total) : 100}%)`;
  return {
    tick(n: number) {
      const now = Date.now();
      if (stream.isTTY) {
        if (now - last > 100) {
          stream.write(`\r${line(n)}`);
          last = now;
        }
      } else if (now - last > 2000) {
        stream.write(line(n) + '\n');
        last = now;
      }
    },
    done(n: number) {
      stream.write((stream.isTTY ? `\r${line(n)}` : line(n)) + '\n');
    },
  };
}

export function inspect(outbox: SqliteOutbox) {
  const s = outbox.stats();
  const dead = outbox.deadSummary();
  return { file: outbox.file, ...s, deadByCode: dead.byCode, oldestDeadAt: dead.oldestDiedAt };
}

/** Moves dead letters back (all, or the given seqs) in chunks; returns how many moved. */
export function retryDead(outbox: SqliteOutbox, which: 'all' | number[], onProgress?: (done: number, total: number) => void): number {
  const seqs: number[] = [];
  if (which === 'all') {
    for (let after = 0; ; ) {
      const page = outbox.deadLetters(after, 5000);
      if (page.length === 0) break;
      for (const d of page) seqs.push(d.seq);
      after = page[page.length - 1]!.seq;
    }
  } else seqs.push(...which);
  let moved = 0;
  for (let i = 0; i < seqs.length; i += 500) {
    moved += outbox.retryDead(seqs.slice(i, i + 500));
    onProgress?.(Math.min(i + 500, seqs.length), seqs.length);
  }
  return moved;
}

/** Writes every dead letter as one JSON line; with `payload`, the decrypted record (masked unless `unmasked`). */
export async function exportDead(
  outbox: SqliteOutbox,
  out: NodeJS.WritableStream,
  options: { payload?: boolean; unmasked?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<number> {
  const total = outbox.stats().dead;
  let n = 0;
  for (let after = 0; ; ) {
    const page = outbox.deadLetters(after, 1000);
    if (page.length === 0) break;
    for (const d of page) {
      let line: Record<string, unknown> = { ...d };
      if (options.payload) {
        const p = await outbox.deadPayload(d.seq);
        line = { ...line, payload: options.unmasked ? p : maskDeep(p) };
      }
      if (!out.write(JSON.stringify(line) + '\n')) await new Promise((r) => out.once('drain', r));
      n++;
    }
    after = page[page.length - 1]!.seq;
    options.onProgress?.(n, total);
  }
  return n;
}

async function openCardFor(config: ReturnType<typeof loadConfig>): Promise<CardPrimitives> {
  try {
    return await openCard(config.card, createLogger({ level: 'warn', sink: (l) => process.stderr.write(l + '\n') }));
  } catch (err) {
    throw new EhcError('8008', `export --payload needs the crypto card: ${(err as Error).message}`, { cause: err });
  }
}

function usage(): never {
  process.stderr.write('usage: queue.ts [--config FILE | --db FILE] status | dead [--limit N] | retry (--all | SEQ...) | export [--out FILE] [--payload [--unmasked]]\n');
  process.exit(2);
}

export async function main(argv: string[]): Promise<number> {
  argv = [...argv];
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    argv.splice(i, 2);
    return v;
  };
  const bool = (name: string) => {
    const i = argv.indexOf(name);
    if (i >= 0) argv.splice(i, 1);
    return i >= 0;
  };
  const db = flag('--db');
  const configFile = db ? undefined : configPathFrom(argv, process.env);
  flag('--config');
  const limit = Number(flag('--limit') ?? 100);
  const outFile = flag('--out');
  const all = bool('--all');
  const payload = bool('--payload');
  const unmasked = bool('--unmasked');
  const [command, ...rest] = argv;
  if (!command) usage();
  if (payload && !configFile) throw new EhcError('9001', 'export --payload needs --config (for the card and its keys)');
  const config = configFile ? loadConfig(configFile) : undefined;
  const limits = config?.outbox ?? { maxRecords: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER, maxAgeHours: 1e9 };
  const card = payload && config ? await openCardFor(config) : undefined;
  const outbox = SqliteOutbox.open({
    file: db ?? outboxPath(config!),
    card,
    keys: config ? { storage: config.card.keys.storage, mac: config.card.keys.mac } : { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac },
    limits,
    log: createLogger({ level: 'warn', sink: (l) => process.stderr.write(l + '\n') }),
  });
  try {
    switch (command) {
      case 'status':
        process.stdout.write(JSON.stringify(inspect(outbox), null, 2) + '\n');
        return 0;
      case 'dead':
        for (const d of outbox.deadLetters(0, limit)) process.stdout.write(JSON.stringify(d) + '\n');
        return 0;
      case 'retry': {
        const seqs = rest.map(Number);
        if (!all && (seqs.length === 0 || seqs.some((s) => !Number.isInteger(s) || s <= 0))) usage();
        const p = progress('retrying dead letters', all ? outbox.stats().dead : seqs.length);
        const moved = retryDead(outbox, all ? 'all' : seqs, (d) => p.tick(d));
        p.done(moved);
        process.stdout.write(JSON.stringify({ moved }) + '\n');
        return 0;
      }
      case 'export': {
        const stream: WriteStream | NodeJS.WriteStream = outFile ? createWriteStream(path.resolve(outFile), { mode: unmasked ? 0o600 : 0o640 }) : process.stdout;
        const p = progress('exporting dead letters', outbox.stats().dead);
        const n = await exportDead(outbox, stream, { payload, unmasked, onProgress: (d) => p.tick(d) });
        p.done(n);
        if (outFile) await new Promise<void>((resolve, reject) => (stream as WriteStream).end((err?: Error | null) => (err ? reject(err) : resolve())));
        return 0;
      }
      default:
        usage();
    }
  } finally {
    await outbox.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      const e = err instanceof EhcError ? err : new EhcError('8009', String((err as Error)?.message ?? err));
      process.stderr.write(`queue: ${e.code} ${e.message}\n`);
      process.exit(1);
    },
  );
}
