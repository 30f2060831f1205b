/**
 * A full disk (issue #13, item 7): with audit.onFailure = refuse (the default) no answer carrying identity
 * leaves the appliance without its audit record on disk; /v1/health and /v1/status say the trail cannot
 * be written; and once there is room again the chain goes on with no gap and no half line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { startAppliance } from '../src/appliance.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { SimCardSystem } from '../demo/simulator/index.ts';
import { API_KEY } from './helpers/appliance.ts';
import { needs } from './helpers/skip.ts';
import { openToolCard } from '../tools/lib/card.ts';

const mnt = mkdtempSync(path.join(tmpdir(), 'ehc-audit-full-'));
let why = '';
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt], { stdio: 'pipe' });
} catch (err) {
  why = `cannot mount a 3 MB tmpfs (${String((err as { stderr?: Buffer }).stderr ?? err).trim() || 'mount failed'}); needs root or CAP_SYS_ADMIN`;
}

function fill(dir: string): string {
  const f = path.join(dir, 'filler');
  const fd = openSync(f, 'w');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    /* ENOSPC: full */
  } finally {
    closeSync(fd);
  }
  return f;
}

needs(why)('disk full: no identity answer goes out unaudited (refuse), health and status say so, the chain has no gap afterwards', async () => {
  const doc = JSON.parse(readFileSync('appliance.config.json', 'utf8')) as Record<string, any>;
  doc.stateDir = path.join(mnt, 'state');
  doc.his.listen = '127.0.0.1:0';
  doc.simulator.listen = '127.0.0.1:0';
  doc.upstream.url = 'http://127.0.0.1:0/ehc';
  doc.scannerAutoDetect = false;
  const config = parseConfig(doc, path.join(mnt, 'appliance.config.json'));
  const a = await startAppliance(config, memoryLogger());
  const sim = new SimCardSystem({ ehcin: config.simulator.ehcin! });
  const person = { idType: '01', idNo: '350322199008207715' };
  const post = async () => {
    const res = await fetch(`${a.url}/v1/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ehealth_code: sim.issueCode(person, { expiresAt: new Date(Date.now() + 300_000) }) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const answeredWithIdentity: string[] = [];
  let filler = '';
  try {
    const first = await post();
    assert.is(first.status, 200, JSON.stringify(first.body));
    assert.is(first.body.decided_by, 'cross-domain');
    assert.ok(first.body.id_no);
    answeredWithIdentity.push(first.body.out_verify_no);

    filler = fill(mnt);
    let refused = 0;
    for (let i = 0; i < 60; i++) {
      const r = await post();
      if (r.status === 200 && r.body.id_no) answeredWithIdentity.push(r.body.out_verify_no);
      else {
        assert.is(r.body.ret_code, '8007', JSON.stringify(r.body));
        assert.not.ok(r.body.id_no, 'a refusal carries no identity');
        assert.match(r.body.ret_msg, /audit/);
        refused++;
      }
    }
    assert.ok(refused > 0, 'the full disk refused identity answers');
    const health = await fetch(`${a.url}/v1/health`);
    assert.is(health.status, 503);
    assert.is(((await health.json()) as { checks: Record<string, boolean> }).checks.audit, false);
    const status = (await (await fetch(`${a.url}/v1/status`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as { ok: boolean; problems: Array<{ reason: string; severity: string }> };
    assert.is(status.ok, false);
    assert.ok(status.problems.some((p) => p.reason.startsWith('audit trail cannot be written') && p.severity === 'down'), JSON.stringify(status.problems));

    rmSync(filler);
    const after = await post();
    assert.is(after.status, 200, JSON.stringify(after.body));
    answeredWithIdentity.push(after.body.out_verify_no);
    assert.is((await fetch(`${a.url}/v1/health`)).status, 200);
  } finally {
    await a.stop();
  }
  const dir = path.join(config.stateDir, 'audit');
  const card = await openToolCard(config);
  const report = await verifyAuditChain(dir, card, config.card.keys.mac).finally(() => card.close());
  assert.ok(report.ok, JSON.stringify(report.broken));
  const text = readdirSync(dir).filter((n) => n.startsWith('audit-')).map((n) => readFileSync(path.join(dir, n), 'utf8')).join('');
  for (const ovn of answeredWithIdentity) assert.ok(text.includes(`"out_verify_no":"${ovn}"`), `the answer ${ovn} has its audit record`);
});

test.after(() => {
  try {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
  } catch {
    /* not mounted */
  }
  rmSync(mnt, { recursive: true, force: true });
});

test.run();
