/**
 * HttpUpstream against the home-card-system simulator over real loopback sockets: plain HTTP
 * (insecure, loopback) and mutual TLS with a PKI made by openssl at test time; the network failures
 * mapped to 8001/8002/8004/9004/9008; 3002 on a repeated serial; tunnel/upstream state.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { HttpUpstream, type UpstreamConfig } from '../src/protocol/http-upstream.ts';
import { METHOD_CROSS_DOMAIN, METHOD_VERIFY, type VerifyBiz } from '../src/protocol/upstream.ts';
import { sealResponse } from '../src/protocol/envelope.ts';
import { newOutVerifyNo, outVerifyTime } from '../src/protocol/ids.ts';
import { EhcError } from '../src/errors.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { startSimulator, DEFAULT_APP_ID, DEFAULT_APP_SECRET, type SimulatorHandle } from '../demo/simulator/server.ts';
import { isValidIdNo, makePopulation } from '../demo/simulator/population.ts';
import { tempDir } from './helpers/tmp.ts';
import { makePki, opensslMissing, type Pki } from './helpers/pki.ts';
import { needs } from './helpers/skip.ts';

const tmp = tempDir('ehc-upstream-');
const keyFile = path.join(tmp.dir, 'soft-card.keys.json');
const missing = opensslMissing();
let pki: Pki | undefined;
const withPki = needs(missing && `mutual-TLS cases need openssl: ${missing}`);
const open: Array<{ close(): Promise<void> | void }> = [];

function config(url: string, over: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    url,
    crossDomainUrl: url,
    appId: DEFAULT_APP_ID,
    appSecret: DEFAULT_APP_SECRET,
    termId: '3502A0001STMA0001',
    version: '1.0.0',
    timeoutMs: 4000,
    connectTimeoutMs: 3000,
    healthIntervalMs: 600_000,
    insecure: url.startsWith('http:'),
    dialect: {},
    ...over,
  };
}

function upstream(cfg: UpstreamConfig): HttpUpstream {
  const u = new HttpUpstream(cfg, { probe: false });
  open.push(u);
  return u;
}

async function sim(opts: Parameters<typeof startSimulator>[0] = {}): Promise<SimulatorHandle> {
  const s = await startSimulator({ keyFile, ...opts });
  open.push(s);
  return s;
}

function biz(code: string, serial = newOutVerifyNo()): VerifyBiz {
  return { ehealth_code: code, treatment_code: '010101', operator_id: '001', operator_name: 'test', out_verify_no: serial, out_verify_time: outVerifyTime() };
}

async function rejects(p: Promise<unknown>, code: string): Promise<EhcError> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof EhcError)) throw err;
    assert.is(err.code, code, err.message);
    return err;
  }
  assert.unreachable(`expected EhcError ${code}, got success`);
  throw new Error('unreachable');
}

/** An HTTP server answering every request with `handler`, for misbehaving-upstream cases. */
async function rawServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; close(): void }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const s = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ehc`, close: () => { server.closeAllConnections(); server.close(); } };
  open.push(s);
  return s;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const person = makePopulation()[3]!;
const id = { idType: person.idType, idNo: person.idNo };

test.before(async () => {
  await SoftCard.open(keyFile, { ...DEFAULT_KEY_INDEXES }); // the appliance's key file, shared with the local card system
  if (!missing) pki = makePki(tmp.dir);
});

test.after(async () => {
  for (const o of open.reverse()) await o.close();
  tmp.cleanup();
});

test('population: deterministic, valid ID check digits', () => {
  const a = makePopulation();
  assert.equal(a, makePopulation());
  assert.ok(a.length >= 20);
  for (const p of a) assert.ok(isValidIdNo(p.idNo), p.idNo);
  assert.is(a[0]!.idNo, '350322199008207715');
});

test('out_verify_no: 32 chars, time-ordered CST prefix, unique; out_verify_time is CST', () => {
  const at = new Date('2018-12-27T14:32:22.502Z');
  const no = newOutVerifyNo(at);
  assert.is(no.length, 32);
  assert.ok(no.startsWith('20181227223222502'), no);
  const many = new Set(Array.from({ length: 20000 }, () => newOutVerifyNo()));
  assert.is(many.size, 20000);
  assert.is(outVerifyTime(at), '20181227223222');
});

test('HTTP: local code verifies upstream; keys are the appliance SoftCard keys; term_id from ctx; keep-alive', async () => {
  const s = await sim();
  const local = s.cardSystems.find((c) => c.ehcin === '3502A0001')!;
  const code = local.issueCode(id);
  const card = new ProfiledCard(await SoftCard.open(keyFile, { ...DEFAULT_KEY_INDEXES }), { ...DEFAULT_KEY_INDEXES });
  assert.equal(await card.decryptEhcid(code.split(':')[0]!), id);
  const u = upstream(config(s.url));
  const got = await u.call(METHOD_VERIFY, biz(code), { termId: '3502A0001STMA0007' });
  assert.is(got.id_no, person.idNo);
  assert.is(got.user_name, person.name);
  assert.is(got.mobile_phone, person.phone);
  assert.is(got.ehealth_card_id, code.split(':')[0]);
  assert.is(got.issuer_org_code, '3502A0001');
  assert.type(got.extra, 'string');
  await u.call(METHOD_VERIFY, biz(local.issueCode(id)));
  const r = s.received();
  assert.is(r.length, 2);
  assert.is(r[0]!.term_id, '3502A0001STMA0007');
  assert.is(r[1]!.term_id, '3502A0001STMA0001');
  assert.is(r[0]!.method, METHOD_VERIFY);
  assert.is(s.connections(), 1, 'second call reuses the kept-alive connection');
  assert.is(u.state.reachable, true);
});

test('cross-domain method: foreign code answered with its issuer', async () => {
  const s = await sim();
  const foreign = s.cardSystems.find((c) => c.ehcin === '3501A0002')!;
  const u = upstream(config('http://127.0.0.1:1/unused', { crossDomainUrl: s.url }));
  const got = await u.call(METHOD_CROSS_DOMAIN, biz(foreign.issueCode(id, { static: true })));
  assert.is(got.issuer_org_code, '3501A0002');
  assert.is(got.id_no, person.idNo);
  assert.is(s.received()[0]!.method, METHOD_CROSS_DOMAIN);
});

test('3002 on a repeat of the same out_verify_no; a new serial is fine', async () => {
  const s = await sim();
  const u = upstream(config(s.url));
  const code = s.cardSystems[0]!.issueCode(id);
  const b = biz(code);
  await u.call(METHOD_VERIFY, b);
  await rejects(u.call(METHOD_VERIFY, b), '3002');
  await u.call(METHOD_VERIFY, { ...b, out_verify_no: newOutVerifyNo() });
  assert.is(s.received().filter((r) => r.out_verify_no === b.out_verify_no).length, 2);
});

test('home-system answers: expired 2001, tampered 2002, unknown issuer 2002, unknown app 1008, bad digest 9003', async () => {
  const s = await sim();
  const local = s.cardSystems[0]!;
  const u = upstream(config(s.url));
  await rejects(u.call(METHOD_VERIFY, biz(local.issueCode(id, { expiresAt: new Date(Date.now() - 60_000) }))), '2001');
  const code = local.issueCode(id);
  const tampered = (code[0] === 'A' ? 'B' : 'A') + code.slice(1);
  await rejects(u.call(METHOD_VERIFY, biz(tampered)), '2002');
  await rejects(u.call(METHOD_VERIFY, biz(code.replace('3502A0001', '4401A0009'))), '2002');
  await rejects(upstream(config(s.url, { appId: 'nobody' })).call(METHOD_VERIFY, biz(code)), '1008');
  await rejects(upstream(config(s.url, { appSecret: DEFAULT_APP_SECRET.replace('BEE9', 'BEE8') })).call(METHOD_VERIFY, biz(code)), '9003');
});

test('tampered response (digest does not match) → 9003; empty → 9004; not JSON → 9008', async () => {
  const good = sealResponse({ retCode: '0000', retMsg: '交易成功', appId: DEFAULT_APP_ID, method: METHOD_VERIFY, version: '1.0.0', biz: { id_no: '350322199008207715', user_name: '陈俊海' }, secret: DEFAULT_APP_SECRET });
  const forged = { ...good, ret_msg: '交易成功 ' };
  const bodies: Record<string, string> = { forged: JSON.stringify(forged), empty: '', junk: '<html>bad gateway</html>', good: JSON.stringify(good) };
  const srv = await rawServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(bodies[(req.url ?? '').split('/').pop()!]);
  });
  const base = srv.url.replace(/\/ehc$/, '');
  await rejects(upstream(config(`${base}/forged`)).call(METHOD_VERIFY, biz('x')), '9003');
  await rejects(upstream(config(`${base}/empty`)).call(METHOD_VERIFY, biz('x')), '9004');
  await rejects(upstream(config(`${base}/junk`)).call(METHOD_VERIFY, biz('x')), '9008');
  assert.is((await upstream(config(`${base}/good`)).call(METHOD_VERIFY, biz('x'))).user_name, '陈俊海');
});

test('read timeout → 8001 (accepts, never answers); reset mid-transfer → 8002', async () => {
  const silent = await rawServer(() => undefined);
  await rejects(upstream(config(silent.url, { timeoutMs: 300 })).call(METHOD_VERIFY, biz('x')), '8001');
  const cut = await rawServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' });
    res.write('{"ret_code":"0000",');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  await rejects(upstream(config(cut.url)).call(METHOD_VERIFY, biz('x')), '8002');
});

test('closed port → 8004 and state unreachable', async () => {
  const port = await freePort();
  const u = upstream(config(`http://127.0.0.1:${port}/ehc`));
  await rejects(u.call(METHOD_VERIFY, biz('x')), '8004');
  assert.is(u.state.reachable, false);
  assert.is(u.state.phase, 'down');
  assert.match(u.state.lastError ?? '', 'ECONNREFUSED');
});

withPki('connect timeout (TLS handshake never completes) → 8004', async () => {
  if (!pki) throw new Error('no PKI');
  // accepts TCP, never speaks TLS; the accepted sockets are destroyed at the end (one never read from
  // would not see the client's FIN, and kept the test process alive after the run)
  const accepted = new Set<net.Socket>();
  const mute = net.createServer((socket) => { accepted.add(socket); socket.on('error', () => undefined); });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  open.push({ close: () => { for (const socket of accepted) socket.destroy(); mute.close(); } });
  const mutePort = (mute.address() as AddressInfo).port;
  const t = upstream(config(`https://127.0.0.1:${mutePort}/ehc`, { connectTimeoutMs: 300, timeoutMs: 5000, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }));
  const err = await rejects(t.call(METHOD_VERIFY, biz('x')), '8004');
  assert.match(err.message, 'within 300 ms');
});

test('setDown(true) refuses connections (8004, probe unreachable); setDown(false) recovers', async () => {
  const s = await sim();
  const u = upstream(config(s.url));
  const code = () => s.cardSystems[0]!.issueCode(id);
  assert.is((await u.probe()).reachable, true);
  assert.type(u.state.latencyMs, 'number');
  await s.setDown(true);
  await rejects(u.call(METHOD_VERIFY, biz(code())), '8004');
  const down = await u.probe();
  assert.is(down.reachable, false);
  assert.is(down.lastCode, '8004');
  await s.setDown(false);
  assert.is((await u.health()).reachable, false, 'health() answers the cached state');
  assert.is((await u.probe()).reachable, true);
  assert.is((await u.call(METHOD_VERIFY, biz(code()))).id_no, person.idNo);
});

test('periodic probe updates the state by itself', async () => {
  const s = await sim();
  const u = new HttpUpstream(config(s.url, { healthIntervalMs: 500 }));
  open.push(u);
  const first = await u.health();
  assert.is(first.reachable, true);
  await s.setDown(true);
  const deadline = Date.now() + 5000;
  while (u.state.reachable && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.is(u.state.reachable, false);
});

withPki('mutual TLS: verifies with client cert and pinned CA; probe is a TLS handshake', async () => {
  if (!pki) throw new Error('no PKI');
  const s = await sim({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
  assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+\/ehc$/);
  const u = upstream(config(s.url, { tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }));
  assert.is((await u.call(METHOD_VERIFY, biz(s.cardSystems[0]!.issueCode(id)))).id_no, person.idNo);
  await u.call(METHOD_VERIFY, biz(s.cardSystems[0]!.issueCode(id)));
  assert.is(s.connections(), 1, 'keep-alive over TLS');
  const st = await u.probe();
  assert.is(st.reachable, true);
  assert.is(st.target, `127.0.0.1:${s.port}`);
});

withPki('mutual TLS: no client cert, a client cert of another CA, or a server of another CA → 8004', async () => {
  if (!pki) throw new Error('no PKI');
  const s = await sim({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
  const code = s.cardSystems[0]!.issueCode(id);
  await rejects(upstream(config(s.url, { tls: { ca: pki.ca } })).call(METHOD_VERIFY, biz(code)), '8004');
  await rejects(upstream(config(s.url, { tls: { ca: pki.ca, cert: pki.otherClientCert, key: pki.otherClientKey } })).call(METHOD_VERIFY, biz(code)), '8004');
  const wrongCa = upstream(config(s.url, { tls: { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey } }));
  const err = await rejects(wrongCa.call(METHOD_VERIFY, biz(code)), '8004');
  assert.match(err.message, /TLS|certificate/i);
  assert.is((await wrongCa.probe()).reachable, false);
  const otherClient = upstream(config(s.url, { tls: { ca: pki.ca, cert: pki.otherClientCert, key: pki.otherClientKey } }));
  const probed = await otherClient.probe();
  assert.is(probed.reachable, false, 'the probe notices a client certificate the card system refuses');
  assert.is(probed.lastCode, '8004');
  assert.is(s.received().length, 0, 'nothing reached the card system');
  assert.throws(() => new HttpUpstream(config(s.url, { tls: {} }), { probe: false }), (e: EhcError) => e.code === '9001' && /CA pinning/.test(e.message));
});

withPki('TLS 1.1 refused both ways (positive control: the same 1.1 client works against a 1.1 server)', async () => {
  if (!pki) throw new Error('no PKI');
  const legacy = { minVersion: 'TLSv1' as const, maxVersion: 'TLSv1.1' as const, ciphers: 'DEFAULT@SECLEVEL=0' };
  const old = tls.createServer({ ...legacy, cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, (sock) => sock.end());
  await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
  open.push({ close: () => void old.close() });
  const oldPort = (old.address() as AddressInfo).port;
  const handshake = (port: number) =>
    new Promise<string>((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pki!.ca), cert: readFileSync(pki!.clientCert), key: readFileSync(pki!.clientKey), ...legacy });
      c.once('secureConnect', () => { resolve(String(c.getProtocol())); c.destroy(); });
      c.once('error', (e) => resolve(`error: ${(e as Error).message}`));
    });
  assert.is(await handshake(oldPort), 'TLSv1.1', 'control: TLS 1.1 is possible on this machine');
  const s = await sim({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
  assert.match(await handshake(s.port), /^error:/, 'the simulator (like any card system we accept) refuses TLS 1.1');
  const u = upstream(config(`https://127.0.0.1:${oldPort}/ehc`, { tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }));
  await rejects(u.call(METHOD_VERIFY, biz('x')), '8004');
  old.close();
});

test('a kept-alive connection the server drops unanswered is retried once on a fresh one', async () => {
  const good = sealResponse({ retCode: '0000', retMsg: '交易成功', appId: DEFAULT_APP_ID, method: METHOD_VERIFY, version: '1.0.0', biz: { id_no: '1' }, secret: DEFAULT_APP_SECRET });
  const perSocket = new WeakMap<object, number>();
  let requests = 0;
  const srv = await rawServer((req, res) => {
    requests++;
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n > 1) return void req.socket.destroy(); // the idle-close race: reset, no answer
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(good));
  });
  const u = upstream(config(srv.url));
  assert.is((await u.call(METHOD_VERIFY, biz('x'))).id_no, '1');
  assert.is((await u.call(METHOD_VERIFY, biz('x'))).id_no, '1');
  assert.is(requests, 3, 'first call, dropped reuse, retry on a new connection');
});

test('caller abort → 8001; version the card system does not support → 1003; bad out_verify_no → 9001', async () => {
  const silent = await rawServer(() => undefined);
  const ac = new AbortController();
  const p = upstream(config(silent.url, { timeoutMs: 5000 })).call(METHOD_VERIFY, biz('x'), { signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  await rejects(p, '8001');
  const s = await sim();
  await rejects(upstream(config(s.url, { version: '2.0.0' })).call(METHOD_VERIFY, biz(s.cardSystems[0]!.issueCode(id))), '1003');
  await rejects(upstream(config(s.url)).call(METHOD_VERIFY, biz('x', 'y'.repeat(33))), '9001');
});

test('plain http needs insecure: true', () => {
  assert.throws(() => new HttpUpstream(config('http://127.0.0.1:9/ehc', { insecure: false }), { probe: false }), (e: EhcError) => e.code === '9001');
});

test.run();
