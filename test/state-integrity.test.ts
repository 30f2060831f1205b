/**
 * Nothing dropped silently, on the real appliance (issue #13, item 6): acknowledged usage records in the
 * outbox, the appliance stopped, the outbox file deleted or emptied → after a restart an integrity alarm in
 * the signed trail, in /v1/status and in the metrics, until an admin acknowledges it (verify-audit --ack).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync, truncateSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { startAppliance, type Appliance } from '../src/appliance.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { openToolCard } from '../tools/lib/card.ts';
import { main as verifyAudit } from '../tools/verify-audit.ts';
import { API_KEY } from './helpers/appliance.ts';
import { tempDir } from './helpers/tmp.ts';

const person = { idType: '01', idNo: '350322199008207715' };

function configFor(dir: string) {
  const doc = JSON.parse(readFileSync('appliance.config.json', 'utf8')) as Record<string, any>;
  doc.stateDir = path.join(dir, 'state');
  doc.his.listen = '127.0.0.1:0';
  doc.simulator.enabled = false;
  doc.upstream.url = 'http://127.0.0.1:9/ehc'; // nobody there: usage records stay in the outbox
  doc.upstream.healthIntervalMs = 60_000;
  doc.upstream.timeoutMs = 300;
  doc.upstream.connectTimeoutMs = 200;
  doc.scannerAutoDetect = false;
  const file = path.join(dir, 'appliance.config.json');
  writeFileSync(file, JSON.stringify(doc));
  return parseConfig(doc, file);
}

async function get(a: Appliance, p: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${a.url}${p}`, { headers: { authorization: `Bearer ${API_KEY}` } });
  return { status: res.status, text: await res.text() };
}

async function verifyLocal(a: Appliance, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const code = await issueHealthCode(a.card, { identity: person, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
    const res = await fetch(`${a.url}/v1/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ehealth_code: code }),
    });
    const body = (await res.json()) as { ret_code?: string; decided_by?: string };
    if (res.status === 200 && body.decided_by === 'local') ok++;
  }
  return ok;
}

for (const damage of ['deleted', 'emptied'] as const) {
  test(`an outbox ${damage} while stopped is an integrity alarm after restart (status, metrics, trail) until acknowledged`, async () => {
    const t = tempDir('ehc-integrity-');
    const config = configFor(t.dir);
    try {
      let a = await startAppliance(config, memoryLogger());
      const acked = await verifyLocal(a, 12);
      assert.is(acked, 12);
      assert.is(a.outbox.stats().depth, 12, 'undelivered usage records wait in the outbox');
      await a.stop();

      const db = path.join(config.stateDir, 'outbox.sqlite');
      for (const f of [db, `${db}-wal`, `${db}-shm`]) {
        if (!existsSync(f)) continue;
        if (damage === 'deleted') rmSync(f);
        else truncateSync(f, 0);
      }

      const log = memoryLogger();
      a = await startAppliance(config, log);
      try {
        const status = JSON.parse((await get(a, '/v1/status')).text);
        assert.is(status.ok, false, 'not healthy');
        assert.ok(status.problems.some((p: { reason: string }) => /integrity alarm \(outbox-missing\)/.test(p.reason)), JSON.stringify(status.problems));
        assert.match((await get(a, '/metrics')).text, /ehc_edge_audit_integrity_alarms 1/);
        assert.ok(log.lines.some((l) => l.includes('outbox behind its acknowledged high-water mark')));
      } finally {
        await a.stop();
      }
      // in the signed trail, and it survives a restart until acknowledged
      const card = await openToolCard(config);
      try {
        const report = await verifyAuditChain(path.join(config.stateDir, 'audit'), card, config.card.keys.mac);
        assert.ok(report.ok, JSON.stringify(report.broken));
        const alarm = report.alarms.find((x) => x.problem === 'outbox-missing');
        assert.ok(alarm, JSON.stringify(report.alarms));
        assert.equal(alarm!.missing, { from: 1, to: 12 });
      } finally {
        await card.close();
      }
      a = await startAppliance(config, memoryLogger());
      assert.ok(JSON.parse((await get(a, '/v1/status')).text).problems.some((p: { reason: string }) => /outbox-missing/.test(p.reason)), 'still there after another restart');
      await a.stop();

      const cfgArgs = ['--config', config.configPath, '--dir', path.join(config.stateDir, 'audit'), '--quiet'];
      assert.is(await verifyAudit(cfgArgs), 1, 'verify-audit is not "intact" while an alarm is open');
      assert.is(await verifyAudit([...cfgArgs, '--ack', '--note', 'outbox restored from nothing; records reported lost']), 0);
      a = await startAppliance(config, memoryLogger());
      try {
        const status = JSON.parse((await get(a, '/v1/status')).text);
        assert.not.ok(status.problems.some((p: { reason: string }) => /integrity/.test(p.reason)), JSON.stringify(status.problems));
        assert.match((await get(a, '/metrics')).text, /ehc_edge_audit_integrity_alarms 0/);
      } finally {
        await a.stop();
      }
    } finally {
      t.cleanup();
    }
  });
}

test.run();
