/**
 * The scan stream over WebSocket (src/his/scan-websocket.ts) on a real appliance, with the `ws` client:
 * ticket required and single-use (query or subprotocol), the station filter, resume with lastEventId,
 * and the same events as the SSE stream.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { testAppliance, API_KEY } from './helpers/appliance.ts';
import { SimCardSystem } from '../demo/simulator/index.ts';

const AUTH = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };

test('WebSocket stream: ticket (query or subprotocol), single use, filter, resume with lastEventId', async () => {
  const t = await testAppliance((doc) => {
    doc.his.websocket = true;
  });
  try {
    const base = t.appliance.url;
    const wsBase = base.replace(/^http/, 'ws');
    const ticket = async (station: string) => (await (await fetch(`${base}/v1/stream-tickets`, { method: 'POST', headers: AUTH, body: JSON.stringify({ station }) })).json()) as { ticket: string; websocket_url: string };
    const opened = (url: string, protocols?: string[]) =>
      new Promise<{ ws: WebSocket; messages: Array<{ id?: number; event: string; data: Record<string, unknown> }> }>((resolve, reject) => {
        const ws = new WebSocket(url, protocols);
        const messages: Array<{ id?: number; event: string; data: Record<string, unknown> }> = [];
        ws.on('message', (m) => messages.push(JSON.parse(String(m))));
        ws.once('open', () => resolve({ ws, messages }));
        ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
        ws.once('error', reject);
      });
    const refused = async (p: Promise<unknown>, why: string) => {
      const err = await p.then(() => undefined, (e: Error) => e);
      assert.ok(err, why);
      assert.match(err!.message, /HTTP 401/, why);
    };
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(cond(), 'waited 5 s');
    };

    await refused(opened(`${wsBase}/v1/scans/ws?station=desk-1`), 'no ticket, no stream');
    const t1 = await ticket('desk-1');
    const a = await opened(`${wsBase}${t1.websocket_url}`);
    await refused(opened(`${wsBase}${t1.websocket_url}`), 'a ticket opens one stream');
    const t2 = await ticket('desk-1');
    const b = await opened(`${wsBase}/v1/scans/ws?station=desk-1`, [`ehc-ticket.${t2.ticket}`]);
    assert.is(b.ws.protocol, `ehc-ticket.${t2.ticket}`);

    const sim = new SimCardSystem({ ehcin: t.config.simulator.ehcin! });
    const inject = (station: string, idNo = '350322199008207715') =>
      fetch(`${base}/v1/scans/inject`, { method: 'POST', headers: AUTH, body: JSON.stringify({ text: sim.issueCode({ idType: '01', idNo }, { expiresAt: new Date(Date.now() + 300_000) }), scanner: station === 'desk-1' ? 'kiosk1' : 'kiosk2', station }) }).then((r) => r.json() as Promise<{ resultEventId: number }>);
    const r1 = await inject('desk-1');
    await inject('desk-2');
    await until(() => a.messages.some((m) => m.event === 'result'));
    const result = a.messages.find((m) => m.event === 'result')!;
    assert.is(result.id, r1.resultEventId);
    assert.is(result.data.ret_code, '0000');
    const ready = a.messages[0]!;
    assert.equal([ready.event, ready.data], ['ready', { lastEventId: ready.id }], 'first the position it starts after');
    assert.ok(a.messages.slice(1).every((m) => m.id! > ready.id!), 'every later event above it');
    assert.ok(a.messages.slice(1).every((m) => m.data.station === 'desk-1' || m.event === 'scan'), 'only desk-1');
    await until(() => b.messages.some((m) => m.event === 'result'));
    assert.equal(b.messages.map((m) => m.id), a.messages.map((m) => m.id), 'both sockets see the same events');

    // resume: a reconnect with the last id it saw gets what it missed, in order
    const lastSeen = a.messages.at(-1)!.id!;
    a.ws.close();
    const r2 = await inject('desk-1', '350322199008201234'); // another person: not a duplicate scan
    assert.ok(r2.resultEventId);
    const t3 = await ticket('desk-1');
    const c = await opened(`${wsBase}${t3.websocket_url}&lastEventId=${lastSeen}`);
    // (that person is unknown to the home system: the outcome is an `error` event, 3001)
    await until(() => c.messages.some((m) => m.id === r2.resultEventId));
    assert.is(c.messages.find((m) => m.id === r2.resultEventId)!.event, 'error');
    assert.ok(c.messages.every((m) => m.id! > lastSeen));
    b.ws.close();
    c.ws.close();
  } finally {
    await t.stop();
  }
});

test.run();
