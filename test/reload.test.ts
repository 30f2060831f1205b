/**
 * SIGHUP (systemctl reload ehc-edge) on the real entry (src/main.ts as a child process): the process
 * stays up, a new HIS key works and the removed one is refused at once, the log level changes, keys
 * that need a restart are named; a broken config is refused and the running one stays.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { changedKeys } from '../src/config/reload.ts';
import { parseConfig } from '../src/config/load.ts';
import { tempDir } from './helpers/tmp.ts';
import { createLogger, setLogLevel } from '../src/platform/log.ts';
import { PtyPair, socatMissing } from './helpers/pty-pair.ts';
import { needs } from './helpers/skip.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = tempDir('ehc-reload-');
const KEY_A = 'reload-test-key-a-0123456789abcdef';
const KEY_B = 'reload-test-key-b-0123456789abcdef';
const file = path.join(tmp.dir, 'appliance.config.json');

function doc(edit: (c: Record<string, any>) => void = () => undefined): Record<string, any> {
  const c = JSON.parse(readFileSync(path.join(repo, 'packaging', 'appliance.config.json'), 'utf8'));
  c.stateDir = path.join(tmp.dir, 'state');
  c.his.listen = '127.0.0.1:0';
  c.his.apiKeys = [KEY_A];
  c.upstream.appSecret = 'BEE975CC71E21F3FE87DE9F7121DE31F09B93D1AC804A60BBF877C240EBB0FC6';
  c.systemd = { watchdog: false };
  c.scannerAutoDetect = false;
  edit(c);
  return c;
}

let child: ChildProcess;
let out = '';
let url = '';
const waitFor = async (pattern: RegExp, from: number): Promise<string> => {
  for (let i = 0; i < 600; i++) {
    const m = pattern.exec(out.slice(from));
    if (m) return m[0];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${pattern}: ${out.slice(from).split("\n").filter((l) => !l.includes("upstream unreachable")).join("\n").slice(-800)}`);
};
const status = async (key: string) => (await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${key}` } })).status;

test.before(async () => {
  writeFileSync(file, JSON.stringify(doc(), null, 2));
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', file], { cwd: repo, env: { ...process.env, NOTIFY_SOCKET: '', EHC_LOG_LEVEL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const ready = await waitFor(/\{[^\n]*"msg":"ehc-edge ready"[^\n]*\}/, 0);
  url = JSON.parse(ready).url;
});
test.after(async () => {
  if (child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
  }
  tmp.cleanup();
});

test('changedKeys names changes two levels deep and ignores where the file is', () => {
  const a = parseConfig(doc(), file);
  const b = parseConfig(doc((c) => ((c.his.apiKeys = [KEY_B]), (c.upstream.timeoutMs = 1234), (c.log = { level: 'debug' }))), path.join(tmp.dir, 'other.json'));
  assert.equal(changedKeys(a, b), ['his.apiKeys', 'log.level', 'upstream.timeoutMs']);
  assert.equal(changedKeys(a, parseConfig(doc(), file)), []);
});

test('setLogLevel (what a reload calls) changes the level of loggers made before it, children too', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', sink: (l) => lines.push(l) });
  const child = log.child({ component: 'x' });
  child.debug('before');
  setLogLevel('debug');
  try {
    child.debug('after');
    log.debug('root too');
    setLogLevel('info');
    child.debug('back');
  } finally {
    setLogLevel(undefined);
  }
  child.debug('own level again');
  assert.equal(lines.map((l) => JSON.parse(l).msg), ['after', 'root too']);
});

test('SIGHUP applies a new HIS key and log level at once, names what needs a restart, and the process stays', async () => {
  assert.is(await status(KEY_A), 200);
  assert.is(await status(KEY_B), 401);
  writeFileSync(file, JSON.stringify(doc((c) => ((c.his.apiKeys = [KEY_B]), (c.upstream.timeoutMs = 1234), (c.log = { level: 'debug' }))), null, 2));
  const from = out.length;
  const pid = child.pid;
  child.kill('SIGHUP');
  const line = JSON.parse(await waitFor(/\{[^\n]*"msg":"config reloaded"[^\n]*\}/, from));
  assert.equal(line.applied, ['his.apiKeys', 'log.level']);
  assert.equal(line.needsRestart, ['upstream.timeoutMs']);
  assert.is(child.exitCode, null, 'still running');
  assert.is(child.pid, pid);
  assert.is(await status(KEY_B), 200, 'the new key works');
  assert.is(await status(KEY_A), 401, 'the removed key is refused');
});

test('SIGHUP with a broken config refuses it and keeps running on the old one', async () => {
  writeFileSync(file, '{ "stateDir": ');
  const from = out.length;
  child.kill('SIGHUP');
  const line = JSON.parse(await waitFor(/\{[^\n]*"msg":"config reload refused[^\n]*\}/, from));
  assert.match(line.problem, /not valid JSON/);
  assert.is(child.exitCode, null);
  assert.is(await status(KEY_B), 200);
  writeFileSync(file, JSON.stringify(doc((c) => (c.his.apiKeys = ['CHANGE-ME-generate-with-openssl-rand-hex-32'])), null, 2));
  const from2 = out.length;
  child.kill('SIGHUP');
  const line2 = JSON.parse(await waitFor(/\{[^\n]*"msg":"config reload refused[^\n]*\}/, from2));
  assert.match(line2.problem, /his\.apiKeys\.0: still the shipped placeholder/);
  assert.is(await status(KEY_B), 200, 'the placeholder did not replace the key');
});

needs(socatMissing())('SIGHUP with a scanner added to scanners[] opens it in the running process and says so', async () => {
  const pty = new PtyPair(path.join(tmp.dir, 'scanner'), path.join(tmp.dir, 'host'));
  await pty.plug();
  try {
    writeFileSync(file, JSON.stringify(doc((c) => ((c.his.apiKeys = [KEY_B]), (c.scanners = [{ driver: 'serial', path: pty.devicePath, suffix: 'CR' }]))), null, 2));
    const from = out.length;
    child.kill('SIGHUP');
    const line = JSON.parse(await waitFor(/\{[^\n]*"msg":"config reloaded"[^\n]*\}/, from));
    assert.ok(line.applied.includes('scanners'), JSON.stringify(line));
    assert.equal(line.scanners.added, [`serial:${pty.devicePath}`]);
    const listed = (await (await fetch(`${url}/v1/scanners`, { headers: { authorization: `Bearer ${KEY_B}` } })).json()) as { scanners: Array<{ scannerId: string; state: string }> };
    assert.is(listed.scanners.find((s) => s.scannerId === `serial:${pty.devicePath}`)?.state, 'open', JSON.stringify(listed));
  } finally {
    await pty.unplug();
  }
});

test.run();
