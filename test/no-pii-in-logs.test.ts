/**
 * Nothing the appliance writes — logs on stdout/stderr, audit files, stats, status answers — holds a
 * clear ID number, name or phone of the test population. A child process drives the verifier, the
 * audit trail, stats, auth and status with that population (test/helpers/pii-driver.ts); this test then
 * reads every file under its state folder and everything it printed, and looks for each clear value.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { population, findClearPii } from './helpers/population.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const COUNT = 40;
const SEED = 99;
const people = population(COUNT, SEED);

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('no clear ID number, name or phone in any log, audit or state file written while driving the population', async () => {
  const state = mkdtempSync(path.join(tmpdir(), 'ehc-nopii-'));
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'helpers', 'pii-driver.ts'), state, String(COUNT), String(SEED)],
      { env: { ...process.env, EHC_LOG_LEVEL: 'debug' }, maxBuffer: 64 * 1024 * 1024 },
      (err, out, errOut) => resolve({ stdout: out, stderr: errOut, code: err ? Number(err.code ?? 1) : 0 }),
    );
  });
  writeFileSync(path.join(state, 'captured-stdout.log'), stdout);
  writeFileSync(path.join(state, 'captured-stderr.log'), stderr);
  assert.is(code, 0, stderr);

  const files = filesUnder(state);
  const auditFiles = files.filter((f) => /audit-\d{8}\.jsonl$/.test(f));
  assert.ok(auditFiles.length >= 1, 'the driver wrote audit files');
  const auditText = auditFiles.map((f) => readFileSync(f, 'utf8')).join('');
  // the population really went through: masked forms are there
  const masked = people.filter((p) => auditText.includes(p.idNo.slice(0, 4) + '*'.repeat(10) + p.idNo.slice(-4)));
  assert.ok(masked.length >= COUNT * 0.8, `masked IDs of most people in the audit trail (${masked.length}/${COUNT})`);
  assert.ok(auditText.includes('"action":"auth.failed"') && auditText.includes('"action":"admin.lockout"'), 'security events audited');
  assert.ok(auditText.includes('"action":"verify.rejected"'), 'rejections audited');
  assert.ok(stdout.split('\n').filter(Boolean).length > COUNT * 2, 'the logger wrote to stdout');

  const leaks: string[] = [];
  for (const f of files) {
    for (const hit of findClearPii(readFileSync(f, 'utf8'), people)) leaks.push(`${path.relative(state, f)}: ${hit.split(':')[0]}`);
  }
  assert.equal(leaks, [], `clear personal data found in ${leaks.length} places`);
  console.log(`  checked ${files.length} files (${auditFiles.length} audit day files, ${stdout.length} bytes of stdout) for ${COUNT} people: no clear ID, name or phone`);
});

test('the search itself finds a clear value (control)', () => {
  const p = people[5]!;
  assert.equal(findClearPii(`{"id":"${p.idNo}"}`, people), [`id:${p.idNo}`]);
  assert.equal(findClearPii(`call ${p.phone} for ${p.name}`, people), [`phone:${p.phone}`, `name:${p.name}`]);
});

test.run();
