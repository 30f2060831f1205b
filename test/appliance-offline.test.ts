import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { SimCardSystem } from '../demo/simulator/index.ts';
import { API_KEY, testAppliance } from './helpers/appliance.ts';

const person = { idType: '01', idNo: '350322199008207715' };
const soon = () => new Date(Date.now() + 300_000);

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.unreachable(`timed out waiting for ${what}`);
}

test('upstream-first, home system down: local code → offline-local; the record reaches the simulator when it returns', async () => {
  const a = await testAppliance((doc) => (doc.verify.policy = 'upstream-first'));
  try {
    const sim = a.appliance.simulator!;
    const code = await issueHealthCode(a.appliance.card, { identity: person, ehcappid: '3502A0001APPA0001', expiresAt: soon() });
    const online = await a.post({ ehealth_code: code });
    assert.is(online.body.decided_by, 'upstream');
    await sim.setDown(true);
    const offline = await a.post({ ehealth_code: code });
    assert.is(offline.status, 200);
    assert.is(offline.body.decided_by, 'offline-local');
    assert.is(offline.body.offline, true);
    const ovn = offline.body.out_verify_no as string;
    assert.not.ok(sim.received().some((r) => r.out_verify_no === ovn));
    await sim.setDown(false);
    await until('the usage record to reach the simulator', () => sim.received().some((r) => r.out_verify_no === ovn));
    const delivered = sim.received().filter((r) => r.out_verify_no === ovn);
    assert.is(delivered.length, 1, 'delivered exactly once');
    assert.is(delivered[0]!.method, 'ehc.ehealthcode.verify');
    await until('the outbox to drain', () => a.appliance.outbox.stats().depth === 0);
  } finally {
    await a.stop();
  }
});

test('local-first usage records are delivered with the original serial; deferred foreign codes are answered later', async () => {
  const a = await testAppliance();
  try {
    const sim = a.appliance.simulator!;
    const local = await issueHealthCode(a.appliance.card, { identity: person, ehcappid: '3502A0001APPA0001', expiresAt: soon() });
    const r = await a.post({ ehealth_code: local });
    assert.is(r.body.decided_by, 'local');
    await until('the usage record', () => sim.received().some((x) => x.out_verify_no === r.body.out_verify_no));

    await sim.setDown(true);
    const foreign = new SimCardSystem({ ehcin: a.config.simulator.ehcin! }).issueCode(person, { expiresAt: soon() });
    const refused = await a.post({ ehealth_code: foreign });
    assert.is(refused.body.ret_code, '8004');
    const deferred = await a.post({ ehealth_code: foreign, defer: true });
    assert.is(deferred.status, 202);
    assert.is(deferred.body.decided_by, 'deferred');
    const ovn = deferred.body.out_verify_no as string;
    const heard: string[] = [];
    a.appliance.events.on('test', 'deferred-answer', (e) => heard.push(e.outVerifyNo));
    const get = async () => {
      const res = await fetch(`${a.appliance.url}/v1/verify/${ovn}`, { headers: { authorization: `Bearer ${API_KEY}` } });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    assert.is((await get()).status, 202);
    await sim.setDown(false);
    await until('the deferred answer', async () => (await get()).status === 200);
    const answer = await get();
    assert.is(answer.body.ret_code, '0000');
    assert.is(answer.body.user_name, '陈俊海');
    // the identity went out only after its audit record was durable (audit.onFailure = refuse): it is there, masked
    const dir = path.join(a.config.stateDir, 'audit');
    const records = readdirSync(dir).filter((n) => n.startsWith('audit-')).flatMap((n) => readFileSync(path.join(dir, n), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
    const audited = records.find((r) => r.action === 'verify.deferred-answer' && r.detail?.out_verify_no === ovn);
    assert.ok(audited, 'the deferred answer has its audit record');
    assert.equal([audited.route, audited.ret_code, audited.subject?.name, audited.subject?.id_no], ['deferred', '0000', '陈*海', '3503**********7715']);
    // the answer row is readable once committed; listeners hear it once its fsync resolved the ack
    await until('listeners hear the answer', () => heard.includes(ovn));
    assert.ok(heard.includes(ovn), 'listeners hear the answer');
    const missing = await fetch(`${a.appliance.url}/v1/verify/nope`, { headers: { authorization: `Bearer ${API_KEY}` } });
    assert.is(missing.status, 404);
  } finally {
    await a.stop();
  }
});

test.run();
