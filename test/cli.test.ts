import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { AuditTrail } from '../src/ops/audit.ts';
import { UsageStats } from '../src/ops/stats.ts';
import { opsExtensions } from '../src/his/ops-routes.ts';
import type { StatusSources } from '../src/ops/status.ts';
import { population } from './helpers/population.ts';
import { listen } from './helpers/serve.ts';
import { hisTestApp } from './helpers/his-app.ts';
import { COMMANDS, main as dispatch } from '../tools/ehc-edge.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'tools', 'ehc-edge.ts');
const KEY = 'cli-test-his-key-000001';
const people = population(8, 5);

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: root, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A site folder: config file, state dir, real SoftCard key file. */
async function site(port = 1) {
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-cli-'));
  const config = {
    stateDir: './var',
    site: { orgCode: '45678901-2', orgName: '演示医院', localEhcins: ['3502A0001'], termId: '3502A0001STMA0001' },
    his: { listen: `127.0.0.1:${port}`, apiKeys: [KEY] },
    upstream: { url: 'http://127.0.0.1:18443/ehc', appId: 'demo', appSecret: 'BEE975CC71E21F3FE87DE9F7121DE31F', termId: '3502A0001STMA0001', version: '1.0.0', timeoutMs: 3000, insecure: true },
    card: { driver: 'soft' },
    verify: { policy: 'local-first' },
  };
  const file = path.join(dir, 'appliance.config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const card = await SoftCard.open(path.join(dir, 'var', 'soft-card.keys.json'), { ...DEFAULT_KEY_INDEXES });
  return { dir, file, card, state: path.join(dir, 'var') };
}

test('dispatcher: usage, unknown command, commands not in this build', async () => {
  const [none, help, unknown] = await Promise.all([run([]), run(['--help']), run(['frobnicate', '--lang', 'en'])]);
  assert.is(none.code, 2);
  assert.match(none.stderr, /verify-audit/);
  assert.is(help.code, 0);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  // a command whose module is not in the build (in-process: every real command's module may land)
  COMMANDS['not-built'] = { module: './no-such-command.ts' };
  const errors: string[] = [];
  const original = console.error;
  console.error = (msg: string) => void errors.push(msg);
  try {
    assert.is(await dispatch(['not-built', '--json', '--lang', 'en']), 2);
    assert.is(await dispatch(['not-built', '--lang', 'zh']), 2);
  } finally {
    console.error = original;
    delete COMMANDS['not-built'];
  }
  assert.equal(errors, ['ehc-edge not-built: not available in this build', 'ehc-edge not-built: 此版本中没有这个命令']);
});

test('verify-audit: intact chain exits 0; an edited record exits 1 and is named; no key file exits 2', async () => {
  const s = await site();
  const trail = await AuditTrail.open({ dir: path.join(s.state, 'audit'), card: s.card, macKey: DEFAULT_KEY_INDEXES.mac });
  for (const [i, p] of people.entries()) {
    await trail.append({ kind: 'verify', action: 'verify', route: 'local', terminal: '3502A0001STMA0001', retCode: '0000', subject: { name: p.name, idNo: p.idNo }, operator: `op-${i}` });
  }
  await trail.close();
  await s.card.close();
  const [ok, json, zh] = await Promise.all([run(['verify-audit', '--config', s.file, '--lang', 'en']), run(['verify-audit', '--json', '--quiet'], { EHC_EDGE_CONFIG: s.file }), run(['verify-audit', '--config', s.file], { EHC_EDGE_LANG: 'zh' })]);
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /audit chain intact: 8 records, seq 1\.\.8/);
  assert.match(zh.stdout, /审计链完好：8 条记录，序号 1\.\.8/, 'Chinese by default');
  assert.match(ok.stderr, /1\/1 day files, 8 records checked/, 'progress on stderr');
  assert.match(zh.stderr, /1\/1 个日文件，已检查 8 条记录/, 'progress in the run\'s language');
  assert.is(JSON.parse(json.stdout).ok, true);
  assert.is(json.stderr, '');

  const auditDir = path.join(s.state, 'audit');
  const file = path.join(auditDir, readdirSync(auditDir).find((n) => n.endsWith('.jsonl'))!);
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  lines[2] = lines[2]!.replace('"operator":"op-2"', '"operator":"op-X"');
  writeFileSync(file, lines.join('\n') + '\n');
  const [bad, badJ, nokey] = await Promise.all([
    run(['verify-audit', '--config', s.file, '--lang', 'en']),
    run(['verify-audit', '--config', s.file, '--json']),
    run(['verify-audit', '--config', s.file, '--key-file', path.join(s.dir, 'missing.json'), '--lang', 'en']),
  ]);
  assert.is(bad.code, 1);
  assert.match(bad.stdout, /AUDIT CHAIN BROKEN \(edited\): record seq 3 at audit-\d{8}\.jsonl:3 was altered/);
  const badJson = JSON.parse(badJ.stdout);
  assert.equal([badJson.broken.problem, badJson.broken.seq, badJson.broken.line], ['edited', 3, 3]);

  assert.is(nokey.code, 2);
  assert.match(nokey.stderr, /no card key file/);
});

test('status and stats over the HIS port: exit codes 0/1/2/3, JSON export with paging', async () => {
  const s = await site();
  await s.card.close();
  const stats = await UsageStats.open({ file: path.join(s.state, 'stats', 'usage.json'), site: { orgCode: '45678901-2' }, defaultScene: '010101', saveDelayMs: 10 });
  // 1200 rows: more than one page of 1000
  for (let d = 0; d < 600; d++) {
    const day = new Date(2025, 0, 1 + d);
    stats.recordVerification({ decided_by: 'local', offline: false, out_verify_time: '' }, { at: day });
    stats.recordVerification({ decided_by: 'offline-local', offline: true, out_verify_time: '' }, { at: day });
  }
  let healthy = true;
  const sources: StatusSources = {
    version: '0.1.0',
    startedAt: new Date(Date.now() - 60_000),
    site: { orgCode: '45678901-2', termId: '3502A0001STMA0001' },
    scanners: () => [{ id: 'serial:/dev/ttyS0', state: 'ready', lastScanAt: null }],
    card: async () => ({ ok: healthy, driver: 'soft', detail: healthy ? 'ready' : 'key file unreadable' }),
    upstream: async () => ({ reachable: true, url: 'http://127.0.0.1:18443/ehc', latencyMs: 3 }),
    outbox: () => ({ depth: 0, bytes: 0, oldestAgeSeconds: null, dead: 0, full: false }),
  };
  // the production HIS app: /v1/status over these sources, the stats routes as the appliance mounts them
  const app = hisTestApp({ apiKeys: [KEY], status: sources, extensions: opsExtensions({ stats, site: { orgCode: '45678901-2' }, scanners: () => [{ id: 'serial:/dev/ttyS0', stmCode: '3502A0001STMA0001' }] }) });
  const srv = await listen(app);
  const s2 = await site(srv.port);
  await s2.card.close();
  try {
    const st = await run(['status', '--config', s2.file, '--lang', 'en']);
    assert.is(st.code, 0, st.stderr);
    assert.match(st.stdout, /HEALTHY/);
    assert.match(st.stdout, /upstream {2}reachable {2}3 ms/);
    healthy = false;
    const sick = await run(['status', '--config', s2.file, '--json']);
    assert.is(sick.code, 1);
    assert.is(JSON.parse(sick.stdout).card.detail, 'key file unreadable');
    const out = path.join(s.dir, 'export.json');
    const [refused, ex, rangedRun, badFrom] = await Promise.all([
      run(['status', '--url', srv.url, '--key', 'wrong-key-0000000000000', '--lang', 'en']),
      run(['stats', '--config', s2.file, '--terms', '--out', out, '--lang', 'en']),
      run(['stats', '--config', s2.file, '--from', '20250201', '--to', '20250228', '--json', '-q']),
      run(['stats', '--config', s2.file, '--from', '2025-02-01']),
    ]);
    assert.is(refused.code, 2);
    assert.match(refused.stderr, /refused the key/);
    assert.is(ex.code, 0, ex.stderr);
    assert.match(ex.stderr, /1200\/1200 rows/);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    assert.is(doc.usecard_scene_list.length, 1200);
    assert.equal(doc.usecard_scene_list[0], { time_region: '20250101', org_code: '45678901-2', online_or_offline: 'offline', usecard_scene: '010101', usecard_scene_num: 1 });
    assert.is(doc.read_term_list[0].term_record, '3502A0001STMA0001');
    const ranged = JSON.parse(rangedRun.stdout);
    assert.is(ranged.usecard_scene_list.length, 56);
    assert.is(badFrom.code, 2);

    // from the state folder directly, appliance not needed
    await stats.close();
    const direct = JSON.parse((await run(['stats', '--config', s.file, '--state', '--json', '--from', '20260101'])).stdout);
    assert.is(direct.usecard_scene_list.length, 2 * (600 - 365));
  } finally {
    await srv.close();
  }
  const down = await run(['status', '--config', s2.file, '--lang', 'en']);
  assert.is(down.code, 3);
  assert.match(down.stderr, /unreachable/);
});

test.run();
