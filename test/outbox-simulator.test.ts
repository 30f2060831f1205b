/**
 * The outbox wired as main will wire it, against the real home-card-system simulator over loopback
 * HTTP with HttpUpstream: with the upstream down a local code still verifies (offline-local) and a
 * foreign code asked with defer is queued; when the simulator is back, replay delivers both with their
 * original serials, the deferred answer is published and kept for GET /v1/verify/{out_verify_no}.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { openOutbox, registerOutboxMetrics, startReplay } from '../src/store/index.ts';
import { createRegistry } from '../src/platform/metrics.ts';
import { HttpUpstream } from '../src/protocol/http-upstream.ts';
import { RoutingVerifier } from '../src/verify/verifier.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { EhcError } from '../src/errors.ts';
import { memoryLogger } from '../src/platform/log.ts';
import type { UpstreamIdentity } from '../src/protocol/upstream.ts';
import { startSimulator, DEFAULT_APP_ID, DEFAULT_APP_SECRET } from '../demo/simulator/server.ts';
import { makePopulation } from '../demo/simulator/population.ts';
import { tempDir } from './helpers/tmp.ts';

const tmp = tempDir('ehc-outbox-sim-');

async function until(cond: () => boolean, what: string, ms = 30_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('upstream down: local code verifies offline-local, deferred foreign code queued; both reach the simulator when it is back', async () => {
  const keys = { ...DEFAULT_KEY_INDEXES };
  const keyFile = path.join(tmp.dir, 'soft-card.keys.json');
  const card = new ProfiledCard(await SoftCard.open(keyFile, keys), keys);
  const sim = await startSimulator({ keyFile, port: 0 });
  const person = makePopulation()[2]!;
  const id = { idType: person.idType, idNo: person.idNo };
  const localCode = sim.cardSystems.find((c) => c.ehcin === '3502A0001')!.issueCode(id);
  const foreignCode = sim.cardSystems.find((c) => c.ehcin === '3501A0002')!.issueCode(id);
  const upstream = new HttpUpstream(
    {
      url: sim.url,
      crossDomainUrl: sim.url,
      appId: DEFAULT_APP_ID,
      appSecret: DEFAULT_APP_SECRET,
      termId: '3502A0001STMA0001',
      version: '1.0.0',
      timeoutMs: 4000,
      connectTimeoutMs: 2000,
      healthIntervalMs: 600_000,
      insecure: true,
      dialect: {},
    },
    { probe: false },
  );
  const log = memoryLogger();
  const outbox = await openOutbox(
    {
      stateDir: path.join(tmp.dir, 'state'),
      outbox: { maxRecords: 1000, maxBytes: 1 << 20, maxAgeHours: 24, whenFull: 'reject-new', replayBatch: 64, replayYieldAbove: 0.9, replayMaxYieldMs: 5000 },
      card: { driver: 'soft', keyFile, keys },
    },
    card,
    log,
  );
  const verifier = new RoutingVerifier({
    card,
    upstream,
    outbox,
    settings: { localEhcins: ['3502A0001'], policy: 'upstream-first', clockSkewSeconds: 30, treatmentCode: '010101', operatorId: 'op', operatorName: '测试员', termId: '3502A0001STMA0001' },
  });

  let replay: ReturnType<typeof startReplay> | undefined;
  try {
    await sim.setDown(true);
    const offline = await verifier.verify({ ehealthCode: localCode });
    assert.is(offline.decided_by, 'offline-local');
    assert.is(offline.id_no, person.idNo);
    const refused = await verifier.verify({ ehealthCode: foreignCode }).catch((e) => e);
    assert.instance(refused, EhcError);
    assert.is(refused.code, '8004', 'without defer a foreign code fails fast');
    const deferred = await verifier.verify({ ehealthCode: foreignCode, defer: true });
    assert.is(deferred.decided_by, 'deferred');
    assert.is(outbox.stats().depth, 2);
    assert.is((await outbox.lookup(deferred.out_verify_no))?.state, 'pending');

    const published: [string, UpstreamIdentity | EhcError][] = [];
    replay = startReplay({ outbox, upstream, log, backoff: { baseMs: 20, maxMs: 100 }, onDeferredResult: (ovn, a) => published.push([ovn, a]) });
    const r = replay;
    await until(() => r.status().probes >= 1, 'a failed probe while the simulator is down');
    assert.is(sim.received().length, 0);
    assert.is(replay.status().depth, 2);
    await sim.setDown(false);
    await until(() => r.status().depth === 0, 'outbox drained to the simulator');
    await replay.stop();

    const got = sim.received();
    assert.equal(got.map((r) => r.out_verify_no), [offline.out_verify_no, deferred.out_verify_no], 'both serials, in order, unchanged');
    assert.is(got[0]!.ehealth_code, localCode);
    assert.is(published.length, 1);
    assert.is(published[0]![0], deferred.out_verify_no);
    assert.is((published[0]![1] as UpstreamIdentity).id_no, person.idNo);
    const kept = await outbox.lookup(deferred.out_verify_no);
    assert.ok(kept?.state === 'answered' && kept.retCode === '0000' && kept.identity?.id_no === person.idNo);
    const s = replay.status();
    assert.is(s.delivered, 2);
    assert.is(s.dead, 0);
    const registry = createRegistry(false);
    registerOutboxMetrics(registry, replay);
    const text = await registry.metrics();
    assert.match(text, /ehc_edge_replay_delivered_total 2\b/);
    assert.match(text, /ehc_edge_outbox_depth 0\b/);
    assert.match(text, /ehc_edge_replay_retries_total [1-9]/);
  } finally {
    await replay?.stop();
    await outbox.close();
    await upstream.close();
    await sim.close();
    await card.close();
  }
});

test.after(() => tmp.cleanup());

test.run();
