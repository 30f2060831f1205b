import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCrashHarness } from './fixtures/crash-harness.ts';

test('kill -9 at random moments under load, replaying to the simulator: every acknowledged record delivered, repeats only with the same payload, outbox empty', async () => {
  const report = await runCrashHarness({ kills: 5, producers: 8, maxRunMs: 300 });
  console.log(`  kill -9 harness: ${JSON.stringify(report)}`);
  assert.ok(report.acknowledged > 0, 'the children acknowledged records');
  assert.is(report.lost, 0, 'acknowledged records missing upstream');
  assert.is(report.payloadMismatches, 0);
  assert.ok(report.delivered >= report.acknowledged);
  assert.is(report.depthAfter, 0);
  assert.is(report.deadAfter, 0);
  assert.is(report.integrity, 'ok');
});

test.run();
