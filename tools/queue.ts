/**
 * `ehc-edge queue status | dead | retry | export | salvage`: the outbox — inspect it, list / retry / export
 * dead letters, salvage a damaged file (each takes --db FILE instead of --config to open a file directly).
 *
 * Works beside a running appliance (SQLite WAL; the appliance's replay picks retried records up by
 * its idle poll). Long work prints a progress line on stderr.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { loadConfig } from '../src/config/load.ts';
import type { CardPrimitives } from '../src/crypto/card.ts';
import { openCard } from '../src/crypto/open-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { maskDeep } from '../src/platform/mask.ts';
import { createLogger } from '../src/platform/log.ts';
import { outboxPath } from '../src/store/index.ts';
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';
import { salvageOutbox, seqRanges } from '../src/store/salvage.ts';
import { auditOffline } from '../src/ops/audit-offline.ts';
import { act, CliError, cliLang, defineCommand, defineGroup, EXIT, isEntry, loadCliConfig, runCli, table, tr, type CommonOptions } from './lib/cli.ts';

/** A progress line on stderr: rewritten in place on a terminal, one line per ~2 s otherwise. */
export function progress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
  let last = 0;
  const line = (n: number) => `${label}${tr('：', ': ')}${n}/${total} (${total ? Math.floor((n * 100) / total) : 100}%)`;
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
    // 8008 (card unavailable) as the appliance says it, exit 1
    throw new CliError(EXIT.FAILURE, `8008 此操作需要密码卡：${(err as Error).message}`, `8008 this needs the crypto card: ${(err as Error).message}`);
  }
}

type QueueOptions = CommonOptions & { db?: string };

/** Chinese unless --lang en (or an English LANG): the run's language */
const zh = () => cliLang() === 'zh';

const STATUS_ZH: Record<string, string> = { file: '文件', depth: '待上传', bytes: '字节', oldestAgeSeconds: '最早记录（秒前）', dead: '失败记录', full: '已满', deadByCode: '失败记录（按返回码）', oldestDeadAt: '最早失败' };

/** Opens the outbox of --db or the config, runs `work`, closes it. */
async function withOutbox(values: QueueOptions, needCard: boolean, work: (outbox: SqliteOutbox) => Promise<number>): Promise<number> {
  if (needCard && values.db && !values.config) throw new CliError(EXIT.USAGE, 'export --payload 需要 --config（用于密码卡及其密钥）', 'export --payload needs --config (for the card and its keys)');
  const config = values.db && !values.config ? undefined : loadCliConfig(values);
  const limits = config?.outbox ?? { maxRecords: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER, maxAgeHours: 1e9 };
  const card = needCard && config ? await openCardFor(config) : undefined;
  const outbox = SqliteOutbox.open({
    file: values.db ?? outboxPath(config!),
    card,
    keys: config ? { storage: config.card.keys.storage, mac: config.card.keys.mac } : { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac },
    limits,
    log: createLogger({ level: 'warn', sink: (l) => process.stderr.write(l + '\n') }),
  });
  try {
    return await work(outbox);
  } finally {
    await outbox.close();
  }
}

function leaf(name: string, summary: string, description?: string) {
  return defineCommand(name, summary, description, { his: false }).option('--db <file>', tr('直接指定待上传队列文件（代替 --config 所指的）', 'the outbox file itself (instead of the one --config names)'));
}

export function command() {
  const status = leaf('status', tr('队列深度、字节数、最早记录、按返回码统计的失败记录', 'depth, bytes, oldest record, dead letters by return code'));
  act<QueueOptions>(status, (values) =>
    withOutbox(values, false, async (outbox) => {
      const report = inspect(outbox);
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else console.log(table(Object.entries(report).map(([k, v]) => [zh() ? (STATUS_ZH[k] ?? k) : k, typeof v === 'object' && v !== null ? JSON.stringify(v) : (v as string | number | null)]), ['', '']));
      return EXIT.OK;
    }),
  );
  const dead = leaf('dead', tr('失败记录（不含个人信息）', 'dead letters (no personal data)')).option('--limit <n>', tr('最多列出条数', 'at most this many'), '100');
  act<QueueOptions & { limit: string }>(dead, (values) =>
    withOutbox(values, false, async (outbox) => {
      const limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new CliError(EXIT.USAGE, '--limit 须为正整数', '--limit wants a positive integer');
      const rows = outbox.deadLetters(0, limit);
      if (values.json) console.log(JSON.stringify(rows, null, 2));
      else {
        const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
        console.log(rows.length ? table(rows.map((r) => cols.map((c) => { const v = (r as unknown as Record<string, unknown>)[c]; return typeof v === 'object' && v !== null ? JSON.stringify(v) : (v as string | number | undefined); })), cols) : zh() ? '没有失败记录' : 'no dead letters');
      }
      return EXIT.OK;
    }),
  );
  const retry = leaf('retry', tr('把失败记录移回待上传队列末尾', 'move dead letters back to the tail of the outbox')).argument('[seq...]', tr('失败记录的序号', 'sequence numbers of the dead letters')).option('--all', tr('全部失败记录', 'every dead letter'));
  act<QueueOptions & { all?: boolean }>(retry, (values, args) =>
    withOutbox(values, false, async (outbox) => {
      const seqs = args.map(Number);
      if (!values.all && (seqs.length === 0 || seqs.some((s) => !Number.isInteger(s) || s <= 0))) throw new CliError(EXIT.USAGE, 'retry 需要 --all 或序号', 'retry wants --all or sequence numbers');
      const p = progress(tr('正在重传失败记录', 'retrying dead letters'), values.all ? outbox.stats().dead : seqs.length);
      const moved = retryDead(outbox, values.all ? 'all' : seqs, (d) => !values.quiet && p.tick(d));
      if (!values.quiet) p.done(moved);
      console.log(values.json ? JSON.stringify({ moved }) : zh() ? `${moved} 条失败记录已移回待上传队列` : `${moved} dead letters moved back to the outbox`);
      return EXIT.OK;
    }),
  );
  const exp = leaf('export', tr('以 JSON 行导出失败记录（记录内容需要密码卡；除非 --unmasked 否则脱敏）', 'dead letters as JSON lines (payload needs the card; masked unless --unmasked)'))
    .option('--out <file>', tr('写入此文件（权限 0640，--unmasked 时 0600）而不是 stdout', 'write to this file (mode 0640, 0600 with --unmasked) instead of stdout'))
    .option('--payload', tr('包含解密后的记录（需要密码卡）', 'include the decrypted record (needs the crypto card)'))
    .option('--unmasked', tr('个人信息明文输出（与 --payload 一起用）', 'personal data in clear (with --payload)'));
  act<QueueOptions & { out?: string; payload?: boolean; unmasked?: boolean }>(exp, (values) =>
    withOutbox(values, !!values.payload, async (outbox) => {
      const stream: WriteStream | NodeJS.WriteStream = values.out ? createWriteStream(path.resolve(values.out), { mode: values.unmasked ? 0o600 : 0o640 }) : process.stdout;
      const p = progress(tr('正在导出失败记录', 'exporting dead letters'), outbox.stats().dead);
      const n = await exportDead(outbox, stream, { payload: values.payload, unmasked: values.unmasked, onProgress: (d) => !values.quiet && p.tick(d) });
      if (!values.quiet) p.done(n);
      if (values.out) await new Promise<void>((resolve, reject) => (stream as WriteStream).end((err?: Error | null) => (err ? reject(err) : resolve())));
      return EXIT.OK;
    }),
  );
  const salvage = leaf(
    'salvage',
    tr('把损坏队列中所有可读记录复制到新文件，并按序号列出丢失的记录', 'copy every readable record of a damaged outbox into a fresh one; name the lost records by seq'),
    tr(
      '用于有损坏页的待上传队列（database disk image is malformed）：请在设备停止时运行。可读记录（封存字节不变）、失败记录、应答和元数据写入新文件；损坏的文件保留在旁边，名为 outbox.sqlite.damaged-<时间>；序号计数从曾分配过的最大序号之后继续。带 --config 时，抢救过程作为签名记录写入审计链，并列出丢失的序号。有记录丢失时退出码为 1。',
      'For an outbox with a damaged page (database disk image is malformed): run with the appliance stopped. The readable records (sealed bytes unchanged), dead letters, answers and meta go into a fresh file; the damaged file is kept beside it as outbox.sqlite.damaged-<time>; the seq counter goes on after the highest seq ever assigned. With --config the salvage is written to the audit trail as a signed record naming the lost seqs. Exit 1 when records were lost.',
    ),
  );
  act<QueueOptions>(salvage, async (values) => {
    const config = values.db && !values.config ? undefined : loadCliConfig(values);
    const file = values.db ?? outboxPath(config!);
    const report = await salvageOutbox(file);
    const lost = seqRanges(report.lostSeqs);
    if (config) {
      const card = await openCardFor(config);
      try {
        await auditOffline(config, card, [
          {
            kind: 'security',
            action: 'outbox.salvaged',
            detail: { file: report.file, damagedCopy: report.damagedCopy, records: report.records, dead: report.dead, lostSeqs: lost, lostCount: report.lostSeqs.length, lostDeadSeqs: seqRanges(report.lostDeadSeqs), damage: report.damage },
          },
        ]);
      } finally {
        await card.close();
      }
    }
    if (values.json) console.log(JSON.stringify({ ...report, lostRanges: lost }, null, 2));
    else {
      if (zh()) {
        console.log(`已抢救 ${report.records} 条记录、${report.dead} 条失败记录、${report.answers} 个应答到 ${report.file}；损坏的文件保留为 ${report.damagedCopy}`);
        console.log(report.lostSeqs.length ? `丢失 ${report.lostSeqs.length} 条记录（位于损坏页）：序号 ${lost}` : '没有记录丢失');
        if (report.lostDeadSeqs.length) console.log(`丢失的失败记录：序号 ${seqRanges(report.lostDeadSeqs)}`);
      } else {
        console.log(`salvaged ${report.records} records, ${report.dead} dead letters, ${report.answers} answers into ${report.file}; the damaged file is ${report.damagedCopy}`);
        console.log(report.lostSeqs.length ? `LOST ${report.lostSeqs.length} records (on damaged pages): seq ${lost}` : 'no record lost');
        if (report.lostDeadSeqs.length) console.log(`lost dead letters: seq ${seqRanges(report.lostDeadSeqs)}`);
      }
    }
    return report.lostSeqs.length || report.lostDeadSeqs.length ? EXIT.FAILURE : EXIT.OK;
  });
  return defineGroup('queue', tr('待上传队列：深度、最早记录、失败记录、重传、抢救', 'the outbox: depth, oldest, dead records, replay, salvage')).addCommand(status).addCommand(dead).addCommand(retry).addCommand(exp).addCommand(salvage);
}

export async function main(argv: string[]): Promise<number> {
  return runCli(command, argv);
}

if (isEntry(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
