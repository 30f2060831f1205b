import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ClockDiscipline, parseAnswerTimestamp, type ClockPolicy } from '../src/ops/clock-discipline.ts';
import { RoutingVerifier } from '../src/verify/verifier.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { EhcError } from '../src/errors.ts';
import { formatCst } from '../src/platform/time.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { tempDir } from './helpers/tmp.ts';
import { FakeUpstream, LOCAL_EHCIN, MemoryOutbox, PATIENT, softCard } from './helpers/fixtures.ts';
import { API_KEY, testAppliance } from './helpers/appliance.ts';

const TRUE_NOW = Date.parse('2026-11-26T04:00:00Z');
const HOUR = 3_600_000;
const noTimesync = async () => undefined;

async function setup(policy: ClockPolicy, systemClock: () => number, dir: string) {
  const clock = await ClockDiscipline.open({ stateDir: dir, maxSkewSeconds: 120, policy, clock: systemClock, timesync: noTimesync, logger: memoryLogger() });
  const card = await softCard(dir);
  const verifier = new RoutingVerifier({
    card,
    upstream: new FakeUpstream(),
    outbox: new MemoryOutbox(),
    settings: { localEhcins: [LOCAL_EHCIN], policy: 'local-first', clockSkewSeconds: 30, treatmentCode: '010101', operatorId: 'desk', operatorName: 'ehc-edge', termId: `${LOCAL_EHCIN}STMA0001` },
    clock,
  });
  const code = (expiresAt?: Date) => issueHealthCode(card, { identity: PATIENT, ehcappid: `${LOCAL_EHCIN}APPA0001`, expiresAt });
  return { clock, verifier, code };
}

async function retCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return '0000';
  } catch (err) {
    return (err as EhcError).code;
  }
}

test('the system clock an hour behind the last known time: status degrades; refuse policy refuses local dynamic decisions (8008), static codes still answer', async () => {
  const t = tempDir('ehc-clock-');
  try {
    // a previous run knew the true time
    const before = await ClockDiscipline.open({ stateDir: t.dir, maxSkewSeconds: 120, policy: 'refuse', clock: () => TRUE_NOW, timesync: noTimesync });
    await before.close();
    assert.is(JSON.parse(readFileSync(path.join(t.dir, 'clock.json'), 'utf8')).lastKnownMs, TRUE_NOW);
    // restarted with the clock set back an hour
    const { clock, verifier, code } = await setup('refuse', () => TRUE_NOW - HOUR, t.dir);
    const state = clock.state();
    assert.is(state.ok, false);
    assert.is(state.behind_last_known_ms, HOUR);
    assert.match(state.reason ?? '', /behind the last time/);
    const expiredByTrueClock = await code(new Date(TRUE_NOW - HOUR / 2));
    assert.is(await retCode(verifier.verify({ ehealthCode: expiredByTrueClock })), '8008', 'not silently accepted');
    assert.is(await retCode(verifier.verify({ ehealthCode: await code() })), '0000', 'a static code does not depend on the clock');
    await clock.close();
  } finally {
    t.cleanup();
  }
});

test('accept-and-flag: expiry is checked against the corrected clock (never before the last known time), and the answer is flagged', async () => {
  const t = tempDir('ehc-clock-');
  try {
    const before = await ClockDiscipline.open({ stateDir: t.dir, maxSkewSeconds: 120, policy: 'refuse', clock: () => TRUE_NOW, timesync: noTimesync });
    await before.close();
    const { clock, verifier, code } = await setup('accept-and-flag', () => TRUE_NOW - 24 * HOUR, t.dir);
    assert.is(await retCode(verifier.verify({ ehealthCode: await code(new Date(TRUE_NOW - HOUR)) })), '2001', 'expired by the true clock: refused');
    const ok = await verifier.verify({ ehealthCode: await code(new Date(TRUE_NOW + 60_000)) });
    assert.is(ok.clock_suspect, true);
    await clock.close();
  } finally {
    t.cleanup();
  }
});

test("the home system's answer timestamp: an offset beyond the skew makes the clock suspect and corrects now()", async () => {
  const t = tempDir('ehc-clock-');
  try {
    let system = TRUE_NOW - 24 * HOUR; // a first start: nothing persisted, so only the home system can tell
    const { clock, verifier, code } = await setup('accept-and-flag', () => system, t.dir);
    assert.is(clock.state().ok, true, 'no witness yet');
    clock.noteHomeTimestamp(formatCst(new Date(TRUE_NOW)));
    assert.is(clock.state().ok, false);
    assert.is(clock.state().home_offset_ms, 24 * HOUR);
    assert.is(clock.now().getTime(), TRUE_NOW);
    assert.is(await retCode(verifier.verify({ ehealthCode: await code(new Date(TRUE_NOW - HOUR)) })), '2001');
    // the clock is fixed (NTP): the next answer agrees again
    system = TRUE_NOW + 1000;
    clock.noteHomeTimestamp(String(TRUE_NOW + 1500));
    assert.is(clock.state().ok, true);
    assert.is(await retCode(verifier.verify({ ehealthCode: await code(new Date(TRUE_NOW + 600_000)) })), '0000');
    assert.is(parseAnswerTimestamp('not a time'), undefined);
    await clock.close();
  } finally {
    t.cleanup();
  }
});

test('a real appliance records the home system offset from its answers and shows the clock in status', async () => {
  const a = await testAppliance();
  try {
    // a foreign code is verified at the (simulated) home system, whose answer carries its timestamp
    const { SimCardSystem } = await import('../demo/simulator/index.ts');
    const foreign = new SimCardSystem({ ehcin: a.config.simulator.ehcin! }).issueCode({ idType: '01', idNo: '350322199008207715' }, { expiresAt: new Date(Date.now() + 300_000) });
    const r = await a.post({ ehealth_code: foreign });
    assert.is(r.status, 200, JSON.stringify(r.body));
    const status = (await (await fetch(`${a.appliance.url}/v1/status`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as { clock: { ok: boolean; home_offset_ms: number | null; policy: string } };
    assert.is(status.clock.ok, true);
    assert.is(status.clock.policy, 'refuse');
    assert.type(status.clock.home_offset_ms, 'number');
    assert.ok(Math.abs(status.clock.home_offset_ms!) < 120_000);
  } finally {
    await a.stop();
  }
});

test.run();
