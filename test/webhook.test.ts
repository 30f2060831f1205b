/**
 * Push to the HIS: signed webhooks from a durable journal. The receiver here is the integrator's side,
 * written against the documented headers (src/webhook/sign.ts is used only for its verify half, the
 * same check docs/integration shows); the appliance is a real process killed with SIGKILL mid-delivery.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import path from 'node:path';
import { signWebhook, verifyWebhook } from '../src/webhook/sign.ts';
import { WebhookJournal } from '../src/webhook/journal.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { SimCardSystem } from '../demo/simulator/index.ts';
import { tempDir } from './helpers/tmp.ts';
import { API_KEY } from './helpers/appliance.ts';

const SECRET = 'webhook-secret-for-tests-0001';

test('signature: a tampered body, another secret, a stale timestamp are refused; a repeated delivery id is a duplicate', () => {
  const body = '{"event":"result","id_no":"350322199008207715"}';
  const now = Date.UTC(2026, 11, 1, 8, 0, 0);
  const headers = signWebhook(SECRET, 'd-1', body, now);
  assert.match(headers['x-ehc-signature']!, /^hmac-sm3=[0-9a-f]{64}$/);
  const seen = new Set<string>();
  assert.equal(verifyWebhook({ secret: SECRET, headers, body, seen, now }), { ok: true, deliveryId: 'd-1', duplicate: false });
  assert.equal(verifyWebhook({ secret: SECRET, headers, body, seen, now }), { ok: true, deliveryId: 'd-1', duplicate: true });
  assert.equal(verifyWebhook({ secret: SECRET, headers, body: body.replace('7715', '7716'), now }), { ok: false, why: 'bad-signature' });
  assert.equal(verifyWebhook({ secret: 'another-secret-000000', headers, body, now }), { ok: false, why: 'bad-signature' });
  assert.equal(verifyWebhook({ secret: SECRET, headers: { ...headers, 'x-ehc-delivery': 'd-2' }, body, now }), { ok: false, why: 'bad-signature' }, 'the id is signed');
  assert.equal(verifyWebhook({ secret: SECRET, headers, body, now: now + 301_000 }), { ok: false, why: 'stale-timestamp' }, 'a captured request played back later');
  assert.equal(verifyWebhook({ secret: SECRET, headers: {}, body, now }), { ok: false, why: 'missing-headers' });
});

test('journal: sealed at rest, survives a reopen, a torn last line is cut, delivered entries stay delivered', async () => {
  const t = tempDir('ehc-webhook-journal-');
  try {
    const card = await SoftCard.open(path.join(t.dir, 'keys.json'), { ehcid: 1, validity: 2, storage: 3, mac: 4, sign: 1 });
    const keys = { storage: 3, mac: 4 };
    const dir = path.join(t.dir, 'webhooks');
    const j = await WebhookJournal.open({ dir, card, keys, maxQueued: 3 });
    for (const n of [1, 2, 3]) assert.ok(await j.append('his', JSON.stringify({ n, user_name: '陈俊海', id_no: '350322199008207715' })));
    assert.not.ok(await j.append('his', '{}'), 'full: refused, not dropped silently');
    const first = await j.next('his');
    assert.equal(JSON.parse(first!.body).n, 1);
    await j.delivered(first!.entry);
    await j.close();
    const raw = readFileSync(path.join(dir, 'journal.jsonl'), 'utf8');
    assert.not.ok(raw.includes('350322199008207715') || raw.includes('陈俊海'), 'identity is sealed at rest');
    appendFileSync(path.join(dir, 'journal.jsonl'), '{"id":"torn","tar'); // a power cut in the middle of a line
    const again = await WebhookJournal.open({ dir, card, keys, maxQueued: 10 });
    assert.is(again.queued, 2);
    assert.equal(JSON.parse((await again.next('his'))!.body).n, 2);
    assert.ok(await again.append('his', '{"n":4}'));
    await again.close();
    const third = await WebhookJournal.open({ dir, card, keys, maxQueued: 10 });
    assert.is(third.queued, 3, 'the torn line is gone and the new entry kept');
    await third.close();
    await card.close();
  } finally {
    t.cleanup();
  }
});

/** The HIS side: checks every request, processes each delivery id once, can be slowed down. */
async function receiver(delayMs: number) {
  const seen = new Set<string>();
  const processed: Array<{ deliveryId: string; eventId: number }> = [];
  const refused: string[] = [];
  const requests: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  let duplicates = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body });
      const check = verifyWebhook({ secret: SECRET, headers: req.headers, body, seen });
      if (!check.ok) {
        refused.push(check.why);
        res.writeHead(401).end();
        return;
      }
      setTimeout(() => {
        if (check.duplicate) duplicates++;
        else processed.push({ deliveryId: check.deliveryId, eventId: (JSON.parse(body) as { event_id: number }).event_id });
        res.writeHead(200).end('ok');
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/his/scan-result`,
    port,
    seen,
    processed,
    refused,
    requests,
    get duplicates() {
      return duplicates;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 60_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startChild(configFile: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EHC_LOG_LEVEL: 'info' } });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const line = out.split('\n').find((l) => l.includes('HIS port listening'));
      const url = line && /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0];
      if (url) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        child.stderr!.resume();
        resolve({ child, url });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('exit', (code) => reject(new Error(`appliance exited ${code} before listening:\n${out.slice(-2000)}`)));
  });
}

test('kill -9 mid-delivery: after a restart the receiver has processed every result exactly once; replays and tampering are refused', async () => {
  const t = tempDir('ehc-webhook-kill-');
  const his = await receiver(120);
  let child: ChildProcess | undefined;
  try {
    const doc = JSON.parse(readFileSync('appliance.config.json', 'utf8')) as Record<string, any>;
    doc.stateDir = path.join(t.dir, 'state');
    doc.his.listen = '127.0.0.1:0';
    doc.simulator.listen = '127.0.0.1:0';
    doc.scannerAutoDetect = false;
    doc.systemd = { watchdog: false };
    doc.webhooks = { targets: [{ name: 'his', url: his.url, secret: SECRET, station: 'desk-1', timeoutMs: 2000 }], retryMaxMs: 1000 };
    const configFile = path.join(t.dir, 'appliance.config.json');
    writeFileSync(configFile, JSON.stringify(doc));
    const first = await startChild(configFile);
    child = first.child;
    const auth = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
    const sim = new SimCardSystem({ ehcin: doc.simulator.ehcin });
    const expected: number[] = [];
    const N = 24;
    for (let i = 0; i < N; i++) {
      const idNo = `35032219900820${String(1000 + i)}`;
      const code = sim.issueCode({ idType: '01', idNo }, { expiresAt: new Date(Date.now() + 300_000) });
      const out = (await (await fetch(`${first.url}/v1/scans/inject`, { method: 'POST', headers: auth, body: JSON.stringify({ text: code, scanner: 'kiosk1', station: i % 4 === 3 ? 'desk-2' : 'desk-1' }) })).json()) as { resultEventId?: number };
      assert.ok(out.resultEventId, 'each scan has a result (or refusal) event');
      if (i % 4 !== 3) expected.push(out.resultEventId!);
    }
    // all of desk-1's results are in the journal (queued or delivered), then the process dies mid-delivery
    const status = async () => ((await (await fetch(`${first.url}/v1/status`, { headers: auth })).json()) as { webhooks: { targets: Array<{ queued: number; delivered: number }> } }).webhooks.targets[0]!;
    await until('every result journaled', async () => {
      const s = await status();
      return s.queued + s.delivered === expected.length;
    });
    await until('a few deliveries processed', () => his.processed.length >= 3);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    const beforeRestart = his.processed.length;
    assert.ok(beforeRestart < expected.length, `killed mid-delivery (${beforeRestart} of ${expected.length})`);

    const second = await startChild(configFile);
    child = second.child;
    await until('every result processed after the restart', () => his.processed.length >= expected.length);
    await new Promise((r) => setTimeout(r, 500)); // nothing more arrives
    assert.equal(his.processed.map((p) => p.eventId).sort((a, b) => a - b), [...expected].sort((a, b) => a - b), 'each of desk-1\'s results once, desk-2\'s none');
    assert.is(new Set(his.processed.map((p) => p.deliveryId)).size, expected.length);
    assert.equal(his.refused, []);
    console.log(`  webhook: ${expected.length} results, ${beforeRestart} processed before kill -9, ${his.duplicates} redelivered after it (recognised by id)`);

    // an attacker replays a captured request later, or edits one: the receiver's check refuses both
    const captured = his.requests[0]!;
    const later = verifyWebhook({ secret: SECRET, headers: captured.headers, body: captured.body, now: Date.now() + 600_000 });
    assert.equal(later, { ok: false, why: 'stale-timestamp' });
    const tampered = verifyWebhook({ secret: SECRET, headers: captured.headers, body: captured.body.replace('"desk-1"', '"desk-9"') });
    assert.equal(tampered, { ok: false, why: 'bad-signature' });
    const replayNow = await fetch(his.url, { method: 'POST', headers: { ...(captured.headers as Record<string, string>), 'content-length': String(Buffer.byteLength(captured.body)) }, body: captured.body });
    assert.is(replayNow.status, 200, 'a replay within the tolerance is recognised as a duplicate …');
    assert.is(his.processed.length, expected.length, '… and not processed again');
    const s = await (await fetch(`${second.url}/v1/status`, { headers: auth })).json() as { webhooks: { targets: Array<{ queued: number; state: string }> } };
    assert.is(s.webhooks.targets[0]!.queued, 0);
  } finally {
    child?.kill('SIGKILL');
    await his.close();
    t.cleanup();
  }
});

test.run();
