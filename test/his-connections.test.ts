import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { CONNECTION_DEFAULTS, ConnectionBudget } from '../src/his/connection-budget.ts';
import { gateConnections } from '../src/his/connection-gate.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { API_KEY, testAppliance } from './helpers/appliance.ts';
import { requestFrom } from './helpers/from-address.ts';

const person = { idType: '01', idNo: '350322199008207715' };
const LIMITS = { max: 24, perAddress: 16, reserve: 4 };

/** A slow-body sender: the request head and one byte of a 4 000-byte body, then nothing. */
function slowBody(port: number, localAddress: string, head = false): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => {
      // head: a slow-header sender instead (half a request head), which a reserve connection also holds
      if (head) s.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n');
      else s.write(`POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{`);
      resolve(s);
    });
    s.on('error', () => resolve(s));
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

async function verifyFrom(t: Awaited<ReturnType<typeof testAppliance>>, localAddress: string) {
  const code = await issueHealthCode(t.appliance.card, { identity: person, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
  return requestFrom(`${t.appliance.url}/v1/verify`, {
    method: 'POST',
    localAddress,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ehealth_code: code }),
  });
}

test('a slow-body flood from 127.0.0.2 takes at most his.connections.perAddress; 127.0.0.1 still verifies', async () => {
  const t = await testAppliance((doc) => (doc.his.connections = LIMITS));
  const port = Number(new URL(t.appliance.url).port);
  const flood: Socket[] = [];
  try {
    for (let i = 0; i < 60; i++) flood.push(await slowBody(port, '127.0.0.2'));
    const counts = () => t.appliance.his.budget.counts();
    await until(() => counts().open + counts().refused_per_address >= 60, 'every flood connection decided');
    assert.is(counts().open, LIMITS.perAddress, 'the flooding address holds exactly its per-address budget');
    assert.is(counts().refused_per_address, 60 - LIMITS.perAddress);
    const r = await verifyFrom(t, '127.0.0.1');
    assert.is(r.status, 200, r.body);
    assert.is(JSON.parse(r.body).ret_code, '0000');
    const status = await requestFrom(`${t.appliance.url}/v1/status`, { headers: { authorization: `Bearer ${API_KEY}` } });
    assert.equal(JSON.parse(status.body).his.connections.per_address, LIMITS.perAddress);
  } finally {
    for (const s of flood) s.destroy();
    // every socket closed on both sides before the next suite counts its descriptors
    for (let i = 0; i < 200 && t.appliance.his.budget.counts().open > 0; i++) await new Promise((r) => setTimeout(r, 10));
    await t.stop();
  }
});

test('past his.connections.max the reserve serves /v1/health and the status page only; past the reserve, nothing', async () => {
  const t = await testAppliance((doc) => (doc.his.connections = LIMITS));
  const port = Number(new URL(t.appliance.url).port);
  const flood: Socket[] = [];
  try {
    // two addresses fill the ordinary budget (16 + 8 = max 24)
    for (let i = 0; i < 16; i++) flood.push(await slowBody(port, '127.0.0.3'));
    for (let i = 0; i < 8; i++) flood.push(await slowBody(port, '127.0.0.4'));
    await until(() => t.appliance.his.budget.counts().open === LIMITS.max, 'ordinary budget full');
    const verify = await verifyFrom(t, '127.0.0.1');
    assert.is(verify.status, 503, 'an ordinary request on a reserve connection is refused');
    assert.is(verify.headers['retry-after'], '1');
    const health = await requestFrom(`${t.appliance.url}/v1/health`, { localAddress: '127.0.0.1' });
    assert.is(health.status, 200);
    const page = await requestFrom(`${t.appliance.url}/status`, { localAddress: '127.0.0.5' });
    assert.is(page.status, 200);
    // hold the whole reserve, then one more connection is closed at once
    for (let i = 0; i < LIMITS.reserve; i++) flood.push(await slowBody(port, '127.0.0.6', true));
    await until(() => t.appliance.his.budget.counts().reserve_open === LIMITS.reserve, 'reserve full');
    const refused = await requestFrom(`${t.appliance.url}/v1/health`, { localAddress: '127.0.0.7' }).then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code ?? 'error',
    );
    assert.ok(['ECONNRESET', 'EPIPE'].includes(refused), refused);
    assert.ok(t.appliance.his.budget.counts().refused_total >= 1);
    // the flood goes away: ordinary service is back
    for (const s of flood) s.destroy();
    await until(() => t.appliance.his.budget.counts().open === 0, 'flood closed');
    assert.is((await verifyFrom(t, '127.0.0.1')).status, 200);
  } finally {
    for (const s of flood) s.destroy();
    // every socket closed on both sides before the next suite counts its descriptors
    for (let i = 0; i < 200 && t.appliance.his.budget.counts().open > 0; i++) await new Promise((r) => setTimeout(r, 10));
    await t.stop();
  }
});

test('a connection over the budget is reset before the server\'s own connection listeners (HTTP parser, TLS) see it', async () => {
  const server = createServer();
  const reached: Socket[] = [];
  server.on('connection', (socket: Socket) => reached.push(socket)); // stands for the HTTP layer's listener
  const budget = new ConnectionBudget({ ...CONNECTION_DEFAULTS, perAddress: 1 });
  const admitted: Socket[] = [];
  gateConnections(server, budget, (socket) => admitted.push(socket));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  // a refused connection may be reset before its client sees 'connect': the outcome is awaited instead
  const open = (): { socket: Socket; ended: Promise<string> } => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    const ended = new Promise<string>((done) => {
      socket.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
      socket.on('end', () => done('end'));
    });
    return { socket, ended };
  };
  try {
    const first = open();
    await until(() => reached.length === 1, 'the first connection reaches the inner listener');
    const second = open();
    assert.is(await second.ended, 'ECONNRESET', 'the refused connection is reset, not closed with a FIN');
    assert.is(budget.counts().refused_per_address, 1);
    assert.is(reached.length, 1, 'the refused connection never reached the inner listener');
    assert.equal(admitted, reached, 'the admitted one got the idle timeout hook and then the inner listener');
    first.socket.destroy();
  } finally {
    for (const s of reached) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

test.run();
