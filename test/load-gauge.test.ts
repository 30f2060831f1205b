import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventLoopLoad, ForegroundActivity, desksBusy } from '../src/platform/load-gauge.ts';

test('EventLoopLoad: a loop kept busy reads high, an idle one low', async () => {
  const load = new EventLoopLoad();
  load.sample();
  const until = performance.now() + 120;
  while (performance.now() < until); // callbacks hold the loop
  assert.ok(load.sample() > 0.8, `busy loop: ${load.utilization}`);
  await new Promise((r) => setTimeout(r, 120));
  assert.ok(load.sample() < 0.5, `idle loop: ${load.utilization}`);
});

test('ForegroundActivity: active for the window after the last answered verification', () => {
  let now = 10_000;
  const desks = new ForegroundActivity(() => now);
  assert.not.ok(desks.activeWithin(1000), 'nothing answered yet');
  desks.note();
  now += 1000;
  assert.ok(desks.activeWithin(1000));
  now += 1;
  assert.not.ok(desks.activeWithin(1000));
});

test('desksBusy: replay gives way only when the loop is busy AND desks are being served', () => {
  let utilization = 0;
  let active = false;
  const busy = desksBusy({ get utilization() { return utilization; } }, { activeWithin: () => active }, 0.5);
  const cases: Array<[number, boolean, boolean]> = [
    [0.6, true, true],
    [0.6, false, false], // replay's own work, nobody at the desks: keep sending
    [0.4, true, false],
    [0.5, true, false], // strictly above
  ];
  for (const [u, a, expected] of cases) {
    utilization = u;
    active = a;
    assert.is(busy(), expected, `utilization ${u}, desks ${a ? 'active' : 'idle'}`);
  }
});

test.run();
