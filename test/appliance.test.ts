import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { AddressInfo } from 'node:net';
import { SimCardSystem, startSimulator } from '../demo/simulator/index.ts';
import { makePopulation } from '../demo/simulator/population.ts';
import { testAppliance } from './helpers/appliance.ts';
import type { HttpUpstream } from '../src/protocol/http-upstream.ts';
import { assertOpenApiInSync } from './helpers/openapi.ts';

const person = { idType: '01', idNo: '350322199008207715' };
const soon = () => new Date(Date.now() + 300_000);

test('a real appliance on embedded defaults: local, static, cross-domain, expired, offline', async () => {
  const a = await testAppliance();
  try {
    const local = await issueHealthCode(a.appliance.card, { identity: person, ehcappid: '3502A0001APPA0001', expiresAt: soon() });
    const r1 = await a.post({ ehealth_code: local });
    assert.is(r1.status, 200);
    assert.is(r1.body.decided_by, 'local');
    assert.is(r1.body.id_no, person.idNo);

    const stat = await issueHealthCode(a.appliance.card, { identity: person, ehcappid: '3502A0001APPA0001' });
    const r2 = await a.post({ ehealth_code: stat });
    assert.is(r2.body.code_type, 'static');
    assert.is(r2.body.identity_check_required, true);

    const foreign = new SimCardSystem({ ehcin: a.config.simulator.ehcin! }).issueCode(person, { expiresAt: soon() });
    const r3 = await a.post({ ehealth_code: foreign, operator_id: 'n1', operator_name: '护士' });
    assert.is(r3.status, 200);
    assert.is(r3.body.decided_by, 'cross-domain');
    assert.is(r3.body.user_name, '陈俊海');
    // by its serial, not the last one received: the replay may deliver r1's usage record after this call
    const seen = a.appliance.simulator!.received().find((m) => m.out_verify_no === r3.body.out_verify_no)!;
    assert.is(seen.method, 'ehn.ehealthcard.syncCheckErhcInfo');
    assert.is(seen.out_verify_no, r3.body.out_verify_no);
    assert.is(seen.term_id, a.config.site.termId);

    const expired = await issueHealthCode(a.appliance.card, { identity: person, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() - 600_000) });
    const r4 = await a.post({ ehealth_code: expired });
    assert.is(r4.status, 422);
    assert.is(r4.body.ret_code, '2001');

    await a.appliance.simulator!.setDown(true);
    const r5 = await a.post({ ehealth_code: foreign });
    assert.is(r5.status, 503);
    assert.is(r5.body.ret_code, '8004');
    const r6 = await a.post({ ehealth_code: local });
    assert.is(r6.status, 200, 'local codes still verify while the home system is down');
    assert.is(r6.body.decided_by, 'local');

    await assertOpenApiInSync(a.appliance.app, a.appliance.url);
    const status = (await (await fetch(`${a.appliance.url}/v1/status`, { headers: { authorization: 'Bearer demo-his-key-change-me-0001' } })).json()) as any;
    assert.is(status.card.ok, true);
    assert.is(status.policy, 'local-first');
    assert.type(status.outbox.bytes, 'number', 'outbox sizes (the status page shows KiB)');
    assert.type(status.outbox.depth, 'number');
    assert.type(status.outbox.state, 'string', 'replay state');
    assert.ok(!a.log.lines.join('\n').includes(person.idNo), 'no clear ID number in the appliance log');
    assert.ok(!a.log.lines.join('\n').includes('陈俊海'), 'no clear name in the appliance log');
  } finally {
    await a.stop();
  }
});

test('stop() runs each component stop once, in reverse start order; a second stop() answers the same promise', async () => {
  const a = await testAppliance();
  const url = a.appliance.url;
  const first = a.appliance.stop();
  assert.is(a.appliance.stop(), first, 'no second pass (the old stops.reverse() reversed in place: a second stop ran forwards)');
  await first;
  const refused = await fetch(`${url}/v1/health`).then(() => false, () => true);
  assert.ok(refused, 'the HIS port is closed');
  await a.stop();
});

test('the test appliance rides out a 1.5 s stall of its event loop during a probe (a loaded CI machine): the link stays closed, a cross-domain check after it is answered', async () => {
  const a = await testAppliance();
  try {
    const upstream = a.appliance.upstream as HttpUpstream;
    await upstream.probe(); // the link is up
    const changes: string[] = [];
    const off = upstream.link!.onLinkChange((state) => changes.push(state));
    const probing = upstream.probe();
    await new Promise((r) => setImmediate(r)); // the probe's request and timers are under way
    // the stall: nothing runs (the embedded simulator neither); once it ends, the loop runs the expired
    // timers before it reads the answer, so a timeout shorter than the stall fails the probe and opens the breaker
    const until = performance.now() + 1500;
    while (performance.now() < until);
    await probing;
    off();
    assert.equal(changes, [], 'the breaker never opened');
    assert.is(upstream.link!.linkState, 'closed');
    const foreign = new SimCardSystem({ ehcin: a.config.simulator.ehcin! }).issueCode(person, { expiresAt: soon() });
    const r = await a.post({ ehealth_code: foreign });
    assert.equal([r.status, r.body.ret_code, r.body.decided_by], [200, '0000', 'cross-domain']);
  } finally {
    await a.stop();
  }
});

test('a tampered answer from the home system is rejected with 9003, end to end', async () => {
  const sim = await startSimulator({ port: 0 });
  // a man in the middle that flips one hex digit of every biz_content it relays
  const proxy = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const upstream = await fetch(sim.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) });
    const body = (await upstream.json()) as Record<string, string>;
    if (body.biz_content) body.biz_content = (body.biz_content[0] === 'A' ? 'B' : 'A') + body.biz_content.slice(1);
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const a = await testAppliance((doc) => {
    doc.simulator.enabled = false;
    doc.upstream.url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/ehc`;
  });
  try {
    const foreign = sim.cardSystems.find((c) => c.ehcin !== '3502A0001')!.issueCode(person, { expiresAt: soon() });
    const r = await a.post({ ehealth_code: foreign });
    assert.is(r.status, 502);
    assert.is(r.body.ret_code, '9003');
    assert.is(sim.received().length, 1, 'the request did reach the home system');
  } finally {
    await a.stop();
    proxy.close();
    await sim.close();
  }
});

test('the simulator as its own process: --population N makes it know exactly the first N people of makePopulation', async () => {
  const main = new URL('../demo/simulator/main.ts', import.meta.url).pathname;
  const bad = spawn(process.execPath, ['--import', 'tsx', main, '--listen', '127.0.0.1:0', '--population', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let badErr = '';
  bad.stderr.on('data', (d) => (badErr += d));
  assert.is(await new Promise((r) => bad.once('exit', r)), 2);
  assert.match(badErr, /--population must be a whole number/);

  const child = spawn(process.execPath, ['--import', 'tsx', main, '--listen', '127.0.0.1:0', '--population', '300'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const ready = JSON.parse(await new Promise<string>((r) => createInterface({ input: child.stdout }).once('line', r))) as { url: string; cardSystems: string[] };
    const a = await testAppliance((doc) => {
      doc.simulator.enabled = false;
      doc.upstream.url = ready.url;
    });
    try {
      const foreignEhcin = ready.cardSystems.find((e) => e !== a.config.site.localEhcins[0])!;
      const system = new SimCardSystem({ ehcin: foreignEhcin });
      const known = makePopulation(300)[299]!;
      const r1 = await a.post({ ehealth_code: system.issueCode(known, { expiresAt: soon() }) });
      assert.is(r1.status, 200, JSON.stringify(r1.body));
      assert.is(r1.body.decided_by, 'cross-domain');
      assert.is(r1.body.id_no, known.idNo);
      const unknown = makePopulation(400)[399]!;
      const r2 = await a.post({ ehealth_code: system.issueCode(unknown, { expiresAt: soon() }) });
      assert.is(r2.body.ret_code, '3001', 'a person beyond the first 300 is not known');
    } finally {
      await a.stop();
    }
  } finally {
    child.kill('SIGTERM');
  }
});

test.run();
