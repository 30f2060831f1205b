/**
 * `ehc-edge backup FILE` / `ehc-edge restore FILE` on a real state dir: the round trip gives back every
 * byte and mode; a damaged archive is refused before anything is written; both refuse while the
 * appliance answers on its HIS port. (The booted-system test does backup → purge → reinstall →
 * restore → audit chain verifies, queued records delivered.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import { main as backup } from '../tools/backup.ts';
import { main as restore } from '../tools/restore.ts';
import { tempDir } from './helpers/tmp.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = tempDir('ehc-backup-test-');

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), `${(statSync(p).mode & 0o777).toString(8)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir);
  return out;
}

let port = 0;
let configFile = '';
let stateDir = '';
const quiet = async <T>(f: () => Promise<T>): Promise<T> => {
  const log = console.log;
  const err = console.error;
  console.log = () => undefined;
  console.error = () => undefined;
  try {
    return await f();
  } finally {
    console.log = log;
    console.error = err;
  }
};

test.before(async () => {
  port = await freePort();
  const site = path.join(tmp.dir, 'site');
  stateDir = path.join(site, 'state');
  mkdirSync(path.join(stateDir, 'audit'), { recursive: true, mode: 0o700 });
  mkdirSync(path.join(stateDir, 'stats'), { recursive: true, mode: 0o700 });
  writeFileSync(path.join(stateDir, 'outbox.sqlite'), Buffer.from('SQLite format 3\0 pretend pages'));
  writeFileSync(path.join(stateDir, 'outbox.sqlite-wal'), Buffer.alloc(4096, 7));
  writeFileSync(path.join(stateDir, 'soft-card.keys.json'), '{"keys":"secret"}\n', { mode: 0o600 });
  writeFileSync(path.join(stateDir, 'audit', '2026-12-01.jsonl'), '{"seq":1}\n{"seq":2}\n');
  writeFileSync(path.join(stateDir, 'stats', 'usage.json'), '{}\n');
  const c = JSON.parse(readFileSync(path.join(repo, 'packaging', 'appliance.config.json'), 'utf8'));
  c.stateDir = './state';
  c.his.listen = `127.0.0.1:${port}`;
  delete c.card.keyFile;
  configFile = path.join(site, 'appliance.config.json');
  writeFileSync(configFile, JSON.stringify(c, null, 2));
  chmodSync(configFile, 0o640);
});
test.after(() => tmp.cleanup());

test('backup then restore over a wiped site gives back every file, byte and mode', async () => {
  const before = tree(path.dirname(configFile));
  const archive = path.join(tmp.dir, 'site.tar.gz');
  assert.is(await quiet(() => backup([archive, '--config', configFile])), 0);
  assert.is(statSync(archive).mode & 0o777, 0o600, 'the archive holds keys: 0600');
  const names = (await (async () => {
    const seen: string[] = [];
    await tar.list({ file: archive, onReadEntry: (e) => seen.push(e.path) });
    return seen;
  })()).sort();
  assert.ok(names.includes('MANIFEST.json') && names.includes('state/outbox.sqlite-wal') && names.includes('state/audit/2026-12-01.jsonl'), names.join(' '));
  rmSync(path.dirname(configFile), { recursive: true, force: true });
  assert.is(await quiet(() => restore([archive, '--config', configFile])), 0);
  assert.equal(tree(path.dirname(configFile)), before);
  assert.is(statSync(path.join(stateDir, 'audit')).mode & 0o777, 0o700, 'folders keep their mode');
});

test('restore moves the state dir it replaces aside', async () => {
  const archive = path.join(tmp.dir, 'site2.tar.gz');
  assert.is(await quiet(() => backup([archive, '--config', configFile])), 0);
  writeFileSync(path.join(stateDir, 'outbox.sqlite'), 'a fresh install wrote this');
  assert.is(await quiet(() => restore([archive, '--config', configFile])), 0);
  assert.ok(readFileSync(path.join(stateDir, 'outbox.sqlite'), 'utf8').startsWith('SQLite format 3'));
  const aside = readdirSync(path.dirname(stateDir)).filter((n) => n.startsWith('state.before-restore-'));
  assert.ok(aside.length >= 1, 'moved aside');
  assert.is(readFileSync(path.join(path.dirname(stateDir), aside.at(-1)!, 'outbox.sqlite'), 'utf8'), 'a fresh install wrote this');
});

const captured = async (f: () => Promise<number>): Promise<{ code: number; out: string }> => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    return { code: await f(), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
};

test('backup and restore speak zh-CN by default (times in CST) and English with --lang en', async () => {
  const archive = path.join(tmp.dir, 'site-lang.tar.gz');
  const zh = await captured(() => backup([archive, '--config', configFile]));
  assert.is(zh.code, 0);
  assert.match(zh.out, /^备份已写入：.*个文件，压缩前 \d+ 字节/);
  const check = await captured(() => restore([archive, '--check', '--config', configFile]));
  assert.match(check.out, /^备份完好：\d+ 个文件，来自 .*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST/);
  const en = await captured(() => restore([archive, '--config', configFile, '--lang', 'en']));
  assert.match(en.out, /^restored \d+ files [\s\S]*\nnext: systemctl start ehc-edge/);
});

test('a damaged archive is refused before anything is written (exit 1)', async () => {
  const archive = path.join(tmp.dir, 'site3.tar.gz');
  assert.is(await quiet(() => backup([archive, '--config', configFile])), 0);
  // re-pack with one file changed and the old manifest
  const x = path.join(tmp.dir, 'x');
  mkdirSync(x);
  await tar.extract({ file: archive, cwd: x });
  writeFileSync(path.join(x, 'state', 'soft-card.keys.json'), '{"keys":"forged"}\n');
  const damaged = path.join(tmp.dir, 'damaged.tar.gz');
  await tar.create({ gzip: true, file: damaged, cwd: x }, readdirSync(x));
  const stateBefore = tree(stateDir);
  assert.is(await quiet(() => restore([damaged, '--config', configFile])), 1);
  assert.is(await quiet(() => restore([damaged, '--check'])), 1);
  assert.equal(tree(stateDir), stateBefore, 'nothing written');
  // a cut archive (gzip/tar framing) too
  const cut = path.join(tmp.dir, 'cut.tar.gz');
  writeFileSync(cut, readFileSync(archive).subarray(0, 200));
  assert.is(await quiet(() => restore([cut, '--config', configFile])), 1);
  assert.is(await quiet(() => restore([archive, '--check'])), 0, 'the intact one checks');
});

test('backup and restore refuse while the appliance answers on its HIS port (exit 2)', async () => {
  const archive = path.join(tmp.dir, 'site4.tar.gz');
  assert.is(await quiet(() => backup([archive, '--config', configFile])), 0);
  const server = http.createServer((_, res) => res.end('{"status":"ok"}'));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  try {
    const stateBefore = tree(stateDir);
    assert.is(await quiet(() => restore([archive, '--config', configFile])), 2);
    assert.is(await quiet(() => backup([path.join(tmp.dir, 'live.tar.gz'), '--config', configFile])), 2);
    assert.not.ok(existsSync(path.join(tmp.dir, 'live.tar.gz')));
    assert.equal(tree(stateDir), stateBefore);
  } finally {
    server.close();
  }
});

test.run();
