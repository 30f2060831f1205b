/**
 * Start-up configuration problems end the process with exit 2 and one line `file: key: what to fix`,
 * no stack trace (the unit's RestartPreventExitStatus=2 then stops the restart loop). Each case starts
 * the real entry (src/main.ts) as a child process with a config that is valid for the schema but
 * points at a world that is wrong: a missing TLS file, a certificate of another key, a port already
 * taken, a shipped placeholder key.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePki, opensslMissing, type Pki } from './helpers/pki.ts';
import { tempDir } from './helpers/tmp.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = tempDir('ehc-startup-');
const noOpenssl = opensslMissing();
let pki: Pki | undefined;

function config(edit: (c: Record<string, any>) => void): string {
  const c = JSON.parse(readFileSync(path.join(repo, 'packaging', 'appliance.config.json'), 'utf8'));
  c.stateDir = path.join(tmp.dir, 'state');
  c.his.listen = '127.0.0.1:0';
  c.his.apiKeys = ['0123456789abcdef0123456789abcdef'];
  c.upstream.appSecret = 'BEE975CC71E21F3FE87DE9F7121DE31F09B93D1AC804A60BBF877C240EBB0FC6';
  c.systemd = { watchdog: false };
  edit(c);
  const file = path.join(tmp.dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(c, null, 2));
  return file;
}

/** run src/main.ts until it exits (a start that succeeds is stopped with SIGTERM once READY is logged) */
function start(file: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', file], { cwd: repo, env: { ...process.env, NOTIFY_SOCKET: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('ehc-edge ready')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr, stdout }));
  });
}

function assertConfigExit(r: { code: number | null; stderr: string }, file: string, key: string, fix: RegExp) {
  assert.is(r.code, 2, `exit 2, got ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, `one line: ${r.stderr}`);
  assert.ok(lines[0]!.startsWith(`ehc-edge: configuration error: ${file}: ${key}: `), lines[0]);
  assert.match(lines[0]!, fix);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
}

test.before(() => {
  if (!noOpenssl) pki = makePki(tmp.dir);
});
test.after(() => tmp.cleanup());

test('a placeholder HIS API key left in place exits 2 (a demo box with the simulator may keep it)', async () => {
  const file = config((c) => (c.his.apiKeys = ['CHANGE-ME-generate-with-openssl-rand-hex-32']));
  assertConfigExit(await start(file), file, 'his.apiKeys.0', /shipped placeholder: generate a key with `openssl rand -hex 32`/);
  const secret = config((c) => (c.upstream.appSecret = 'CHANGE-ME-APP-SECRET-FROM-CARD-SYSTEM'));
  assertConfigExit(await start(secret), secret, 'upstream.appSecret', /placeholder/);
});

test('a HIS port already in use exits 2 naming his.listen', async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const file = config((c) => (c.his.listen = `127.0.0.1:${port}`));
    assertConfigExit(await start(file), file, 'his.listen', new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
  } finally {
    taken.close();
  }
});

test('a missing HIS TLS key file exits 2 naming the key and the path', async () => {
  if (!pki) return;
  const missing = path.join(tmp.dir, 'no-such.key');
  const file = config((c) => (c.his.tls = { cert: pki!.serverCert, key: missing }));
  assertConfigExit(await start(file), file, 'his.tls.key', /no-such\.key: the file does not exist/);
});

test('an unreadable upstream CA exits 2 (as a non-root service user sees it)', async () => {
  if (!pki) return;
  if (process.getuid?.() === 0) {
    // root reads a 0000 file: use a directory in place of the file instead (EISDIR), still unreadable
    const file = config((c) => ((c.upstream.url = 'https://127.0.0.1:9/ehc'), (c.upstream.insecure = false), (c.upstream.tls = { ca: tmp.dir })));
    assertConfigExit(await start(file), file, 'upstream.tls.ca', /cannot read it \(EISDIR\)/);
    return;
  }
  const ca = path.join(tmp.dir, 'unreadable-ca.pem');
  writeFileSync(ca, readFileSync(pki.ca));
  chmodSync(ca, 0o000);
  const file = config((c) => ((c.upstream.url = 'https://127.0.0.1:9/ehc'), (c.upstream.insecure = false), (c.upstream.tls = { ca })));
  assertConfigExit(await start(file), file, 'upstream.tls.ca', /cannot read it|the service user cannot read it/);
});

test('a certificate that is not of its key exits 2', async () => {
  if (!pki) return;
  const file = config((c) => (c.his.tls = { cert: pki!.serverCert, key: pki!.otherServerKey }));
  assertConfigExit(await start(file), file, 'his.tls.key', /is not the private key of .*server/);
  const up = config((c) => ((c.upstream.url = 'https://127.0.0.1:9/ehc'), (c.upstream.insecure = false), (c.upstream.tls = { ca: pki!.ca, cert: pki!.clientCert, key: pki!.otherClientKey })));
  assertConfigExit(await start(up), up, 'upstream.tls.key', /is not the private key of/);
});

test('the same config with its problems fixed starts (the checks refuse only what is wrong)', async () => {
  const file = config((c) => {
    if (pki) c.his.tls = { cert: pki.serverCert, key: pki.serverKey };
  });
  const r = await start(file);
  assert.ok(r.stdout.includes('ehc-edge ready'), `${r.code} ${r.stderr.slice(-400)}`);
  assert.is.not(r.code, 2, 'not a config refusal');
});

if (noOpenssl) test.skip(`TLS file checks: ${noOpenssl}`, () => {});
test.run();
