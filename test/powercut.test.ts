/**
 * Power cuts in the project's own harness (issue #13, item 4): the appliance runs as its own process with
 * its state folder on test/harness/powercut-fs.py, a FUSE pass-through file system that keeps only what
 * was fsync'd (file data by fsync, names by an fsync of their folder) and can tear the last unsynced
 * write. Producers verify local codes; at a random moment the appliance is killed (-9) and the power
 * cut (every other cut tears). Then, each time: every state file readable; after a restart every
 * acknowledged verification is in the outbox AND in the audit trail (audit.onFailure = refuse makes the
 * audit record durable before the answer); verify-audit passes with no alarm, naming lost lines (if any)
 * as power losses.
 *
 * Cuts: 3 in `npm test`; `EHC_POWERCUT_CUTS=20 npm test -- powercut` (or `npm run bench -- powercut`) for
 * the full 20. Needs /dev/fuse, fusermount and Debian's python3-fusepy (.ci/run installs it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parseConfig } from '../src/config/load.ts';
import { openCard } from '../src/crypto/open-card.ts';
import { generateSoftKeys, writeKeyFile } from '../src/crypto/soft-card.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { createLogger } from '../src/platform/log.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { AuditDayFiles } from '../src/ops/audit-day-files.ts';
import { auditFileName } from '../src/ops/audit-record.ts';
import { makeDirDurablySync } from '../src/platform/durable-write.ts';
const POWERCUT_KEY = 'powercut-test-his-key-0000000001';
import { needs } from './helpers/skip.ts';
import { tempDir } from './helpers/tmp.ts';

const HARNESS = path.resolve('test/harness/powercut-fs.py');
const CUTS = Number(process.env.EHC_POWERCUT_CUTS ?? 3);

function missing(): string | undefined {
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing';
  if (spawnSync('fusermount', ['-V']).error) return 'fusermount is not installed (fuse3/fuse)';
  const py = spawnSync('/usr/bin/python3', ['-c', 'import fusepy'], { encoding: 'utf8' });
  if (py.status !== 0) return 'python3-fusepy is not installed (apt-get install python3-fusepy)';
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await check();
    if (v !== undefined && v !== false) return v as T;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function mounted(mnt: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
}

interface Fs {
  proc: ChildProcess;
  out: string[];
  done: Promise<number | null>;
}

async function mount(lower: string, mnt: string): Promise<Fs> {
  const proc = spawn('/usr/bin/python3', [HARNESS, lower, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  proc.stdout!.on('data', (c: Buffer) => out.push(...c.toString().split('\n').filter(Boolean)));
  proc.stderr!.on('data', (c: Buffer) => out.push(...c.toString().split('\n').filter(Boolean)));
  const done = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  await until('the FUSE mount', () => mounted(mnt) || undefined, 15_000);
  return { proc, out, done };
}

async function powerCut(fs: Fs, mnt: string, tear: boolean): Promise<string> {
  fs.proc.kill(tear ? 'SIGUSR2' : 'SIGUSR1');
  await sleep(50);
  for (let i = 0; i < 100 && mounted(mnt); i++) {
    spawnSync('fusermount', ['-u', mnt]);
    if (mounted(mnt)) await sleep(100);
  }
  await fs.done;
  const line = fs.out.find((l) => l.startsWith('cut:'));
  if (!line) throw new Error(`the harness did not cut: ${fs.out.slice(-5).join(' | ')}`);
  return line;
}

function startAppliance(configFile: string): { proc: ChildProcess; url: Promise<string>; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EHC_LOG_LEVEL: 'info' } });
  let buf = '';
  const url = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /"msg":"HIS port listening"[^\n]*"url":"(http:\/\/[^"]+)"/.exec(buf);
      if (m) resolve(m[1]!);
      if (buf.length > 1_000_000) buf = buf.slice(-100_000);
    });
    proc.on('exit', (code) => reject(new Error(`appliance exited (${code}) before listening: ${buf.slice(-2000)}`)));
  });
  proc.stderr!.on('data', (c: Buffer) => (buf += c.toString()));
  url.catch(() => {});
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, url, exited };
}

/** Every file of the state folder can be read as what it is. */
function checkReadable(state: string): string[] {
  const problems: string[] = [];
  const walk = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(path.join(d, n)).isDirectory() ? walk(path.join(d, n)) : [path.join(d, n)]));
  for (const f of walk(state)) {
    const name = path.basename(f);
    try {
      if (name.endsWith('.json')) JSON.parse(readFileSync(f, 'utf8'));
      else if (name === 'outbox.sqlite') {
        const db = new Database(f);
        const r = String(db.pragma('integrity_check', { simple: true }));
        db.close();
        if (r !== 'ok') problems.push(`${f}: ${r}`);
      }
    } catch (err) {
      problems.push(`${f}: ${(err as Error).message}`);
    }
  }
  return problems;
}

needs(missing())(`${CUTS} power cuts under load: nothing acknowledged lost, every state file readable, verify-audit passes`, async () => {
  const t = tempDir('ehc-powercut-');
  const lower = path.join(t.dir, 'lower');
  const mnt = path.join(t.dir, 'mnt');
  mkdirSync(lower);
  mkdirSync(mnt);
  const keyFile = path.join(t.dir, 'soft-card.keys.json');
  writeKeyFile(keyFile, generateSoftKeys());
  const doc = JSON.parse(readFileSync('appliance.config.json', 'utf8')) as Record<string, any>;
  doc.stateDir = path.join(mnt, 'state');
  doc.his.listen = '127.0.0.1:0';
  doc.simulator.enabled = false;
  // without the demo simulator the start-up checks refuse the shipped placeholders (src/config/startup-checks.ts)
  doc.his.apiKeys = [POWERCUT_KEY];
  doc.upstream.appSecret = 'powercut-test-app-secret-0001';
  doc.admin.apiKeys = ['powercut-test-admin-key-00000001'];
  doc.upstream.url = 'http://127.0.0.1:9/ehc'; // no home system: usage records stay in the outbox to be counted
  doc.upstream.timeoutMs = 300;
  doc.upstream.connectTimeoutMs = 200;
  doc.verify.policy = 'local-first';
  doc.card.keyFile = keyFile;
  doc.scannerAutoDetect = false;
  const configFile = path.join(t.dir, 'appliance.config.json');
  writeFileSync(configFile, JSON.stringify(doc));
  const config = parseConfig(doc, configFile);
  const card = await openCard(config.card, createLogger({ level: 'error' }));
  const acked: string[] = [];
  const ackedIn = new Map<string, { phase: number; at: number; beforeKill?: number }>();
  const summary: string[] = [];
  let fs: Fs | undefined;
  let app: ReturnType<typeof startAppliance> | undefined;
  try {
    for (let cut = 0; cut <= CUTS; cut++) {
      fs = await mount(lower, mnt);
      app = startAppliance(configFile);
      const url = await app.url;
      // the restart recovered: the chain verifies, with no alarm; all acknowledged so far are there
      const report = await verifyAuditChain(path.join(config.stateDir, 'audit'), card, config.card.keys.mac);
      assert.ok(report.ok, `after cut ${cut}: ${JSON.stringify(report.broken)}`);
      assert.equal(report.alarms, [], `after cut ${cut}: a power cut is not tampering`);
      if (acked.length) {
        const db = new Database(path.join(config.stateDir, 'outbox.sqlite'), { readonly: true });
        const inOutbox = new Set((db.prepare('SELECT out_verify_no FROM outbox').pluck().all() as string[]));
        db.close();
        const lostOutbox = acked.filter((o) => !inOutbox.has(o));
        assert.equal(lostOutbox, [], `after cut ${cut}: acknowledged usage records missing from the outbox`);
        const dir = path.join(config.stateDir, 'audit');
        const text = readdirSync(dir).filter((n) => n.startsWith('audit-')).map((n) => readFileSync(path.join(dir, n), 'utf8')).join('');
        const lostAudit = acked.filter((o) => !text.includes(`"out_verify_no":"${o}"`));
        // what a failure needs to be understood: when each lost one was answered (load phase, ms before the
        // kill), and what recovery reported. (The rare failure this check showed — 1 serial in ~2 700 — was
        // the phone mask rewriting the serial in its audit record, not a lost record: src/platform/mask.ts.)
        const why = lostAudit.map((o) => `${o} answered in load phase ${ackedIn.get(o)?.phase} ${ackedIn.get(o)?.beforeKill ?? '?'} ms before the kill`).join('; ');
        assert.equal(lostAudit, [], `after cut ${cut}: acknowledged verifications without an audit record (${why}; recovery: ${JSON.stringify(report.powerLosses)}; ${report.records} records)`);
      }
      summary.push(`cut ${cut}: ${report.records} audit records, ${report.powerLosses.length} power losses recovered${report.powerLosses.length ? ` (${report.powerLosses.map((p) => p.lost ? `${p.lost.from}–${p.lost.to}` : 'no seq').join(', ')})` : ''}, ${acked.length} acknowledged`);
      if (cut === CUTS) {
        app.proc.kill('SIGTERM');
        await app.exited;
        spawnSync('fusermount', ['-u', mnt]);
        await fs.done;
        break;
      }
      // load: 8 producers, for a random 300..1200 ms, then the power goes
      let running = true;
      const producers = Array.from({ length: 8 }, async () => {
        while (running) {
          const code = await issueHealthCode(card, { identity: { idType: '01', idNo: '350322199008207715' }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
          try {
            const res = await fetch(`${url}/v1/verify`, { method: 'POST', headers: { authorization: `Bearer ${POWERCUT_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ ehealth_code: code }) });
            const body = (await res.json()) as { out_verify_no?: string; decided_by?: string };
            if (res.status === 200 && body.decided_by === 'local' && body.out_verify_no && running) {
              acked.push(body.out_verify_no);
              ackedIn.set(body.out_verify_no, { phase: cut, at: Date.now() });
            }
          } catch {
            /* the appliance died mid-request: not acknowledged */
          }
        }
      });
      await sleep(300 + Math.floor(Math.random() * 900));
      app.proc.kill('SIGKILL');
      running = false;
      const killedAt = Date.now();
      for (const a of ackedIn.values()) if (a.phase === cut) a.beforeKill = killedAt - a.at;
      await app.exited;
      await Promise.all(producers);
      const line = await powerCut(fs, mnt, cut % 2 === 1);
      summary.push(`  ${line}`);
      const unreadable = checkReadable(path.join(lower, 'state'));
      assert.equal(unreadable, [], `after cut ${cut + 1}: state files unreadable`);
    }
    console.log(`  power-cut harness:\n  ${summary.join('\n  ')}`);
    assert.ok(acked.length > 0, 'verifications were acknowledged');
  } finally {
    if (app && app.proc.exitCode === null) app.proc.kill('SIGKILL');
    if (mounted(mnt)) spawnSync('fusermount', ['-u', '-z', mnt]);
    await card.close();
    t.cleanup();
  }
});

needs(missing())('a day file a killed process created but never made durable in its folder: what is written into it after a restart survives a cut', async () => {
  const t = tempDir('ehc-powercut-day-');
  const lower = path.join(t.dir, 'lower');
  const mnt = path.join(t.dir, 'mnt');
  mkdirSync(lower);
  mkdirSync(mnt);
  let fs: Fs | undefined;
  try {
    fs = await mount(lower, mnt);
    const dir = path.join(mnt, 'audit');
    makeDirDurablySync(dir);
    // the killed process: it created the day's file and died before the fsync of the folder
    const name = auditFileName('20261202');
    writeFileSync(path.join(dir, name), '', { mode: 0o600 });
    // the restarted one finds the file there, writes a record (fsync'd: it counts as acknowledged)
    const files = new AuditDayFiles(dir);
    assert.is(await files.use('20261202'), false, 'the file was there');
    await files.write(Buffer.from('{"seq":1}\n'));
    await files.close();
    await powerCut(fs, mnt, false);
    fs = undefined;
    const kept = path.join(lower, 'audit', name);
    assert.ok(existsSync(kept), `${name} lost with its acknowledged record: its name was never made durable`);
    assert.is(readFileSync(kept, 'utf8'), '{"seq":1}\n');
  } finally {
    if (mounted(mnt)) spawnSync('fusermount', ['-u', '-z', mnt]);
    if (fs) await fs.done;
    t.cleanup();
  }
});

test.run();
