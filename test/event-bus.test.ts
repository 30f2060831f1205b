import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventBus } from '../src/platform/event-bus.ts';
import { testAppliance } from './helpers/appliance.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';

type Events = { ping: { n: number }; pong: string };

test('listeners are keyed by owner: removeOwner takes all of one owner away, on every event', () => {
  const bus = new EventBus<Events>();
  const heard: string[] = [];
  bus.on('a', 'ping', (e) => heard.push(`a${e.n}`));
  bus.on('a', 'pong', (s) => heard.push(`a:${s}`));
  bus.on('b', 'ping', (e) => heard.push(`b${e.n}`));
  bus.emit('ping', { n: 1 });
  bus.emit('pong', 'x');
  assert.equal(heard, ['a1', 'b1', 'a:x']);
  bus.removeOwner('a');
  assert.is(bus.listenerCount(), 1);
  bus.emit('ping', { n: 2 });
  bus.emit('pong', 'y');
  assert.equal(heard, ['a1', 'b1', 'a:x', 'b2']);
});

test('a listener that throws is contained: the others still hear the event and the error is reported with its owner', () => {
  const errors: string[] = [];
  const bus = new EventBus<Events>((event, owner, err) => errors.push(`${event}/${owner}/${(err as Error).message}`));
  const heard: number[] = [];
  bus.on('broken', 'ping', () => {
    throw new Error('boom');
  });
  bus.on('good', 'ping', (e) => heard.push(e.n));
  bus.emit('ping', { n: 7 });
  assert.equal(heard, [7]);
  assert.equal(errors, ['ping/broken/boom']);
});

test('the appliance emits verified and rejected on its bus, and stop() removes every listener it wired', async () => {
  const a = await testAppliance();
  try {
    const seen: string[] = [];
    a.appliance.events.on('test', 'verified', (e) => seen.push(`verified ${e.result.decided_by}`));
    a.appliance.events.on('test', 'rejected', (e) => seen.push(`rejected ${e.error.code}`));
    const code = await issueHealthCode(a.appliance.card, { identity: { idType: '01', idNo: '350322199008207715' }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
    assert.is((await a.post({ ehealth_code: code })).status, 200);
    assert.is((await a.post({ ehealth_code: 'not a code' })).status >= 400, true);
    assert.equal(seen, ['verified local', 'rejected 2002']);
    a.appliance.events.removeOwner('test');
    assert.ok(a.appliance.events.listenerCount() > 0, 'the appliance wired its own listeners');
    await a.appliance.stop();
    assert.is(a.appliance.events.listenerCount(), 0, 'stop removed them all');
  } finally {
    await a.stop();
  }
});

test.run();
