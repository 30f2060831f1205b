import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from './helpers/skip.ts';
import { testAppliance, API_KEY } from './helpers/appliance.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'packaging', 'monitoring');
const RULES = path.join(dir, 'ehc-edge-alerts.yml');
const DASHBOARD = path.join(dir, 'ehc-edge-dashboard.json');

function promtoolMissing(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { stdio: 'ignore' });
  return r.error ? `promtool is not installed (${(r.error as NodeJS.ErrnoException).code}); apt-get install prometheus (.ci/run does)` : undefined;
}

const withPromtool = needs(promtoolMissing());
withPromtool('promtool check rules: the shipped alerting rules are valid', () => {
  const r = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS: \d+ rules found/);
});

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ refId: string; expr: string }>;
}

test('the Grafana dashboard lints: ids, grid, datasource variable, one query per target, Asia/Shanghai', () => {
  const doc = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; schemaVersion: number; timezone: string; panels: Panel[]; templating: { list: Array<{ name: string }> } };
  assert.match(doc.uid, /^[a-zA-Z0-9_-]{1,40}$/);
  assert.ok(doc.title && doc.schemaVersion >= 30);
  assert.is(doc.timezone, 'Asia/Shanghai');
  const vars = doc.templating.list.map((v) => v.name);
  assert.ok(vars.includes('datasource') && vars.includes('instance'));
  const ids = doc.panels.map((p) => p.id);
  assert.is(new Set(ids).size, ids.length, 'panel ids unique');
  const cells = new Set<string>();
  for (const p of doc.panels) {
    assert.ok(['stat', 'timeseries', 'table', 'gauge'].includes(p.type), `${p.title}: panel type ${p.type}`);
    const g = p.gridPos;
    assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0 && g.y >= 0, `${p.title}: inside the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
      assert.not.ok(cells.has(`${x},${y}`), `${p.title}: overlaps another panel at ${x},${y}`);
      cells.add(`${x},${y}`);
    }
    assert.is(p.datasource?.uid, '${datasource}', `${p.title}: uses the datasource variable`);
    assert.ok(p.targets?.length, `${p.title}: has a query`);
    for (const t of p.targets!) assert.match(t.expr, /instance=~"\$instance"/, `${p.title}: filtered by $instance`);
  }
});

test('every metric the rules and the dashboard use is served by a real appliance on /metrics', async () => {
  const a = await testAppliance();
  try {
    const res = await fetch(`${a.appliance.url}/metrics`, { headers: { Authorization: `Bearer ${API_KEY}` } });
    assert.is(res.status, 200);
    const text = await res.text();
    const served = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)/gm)].flatMap(([, name, type]) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`, name!] : [name!])));
    const used = new Set([...readFileSync(RULES, 'utf8').matchAll(/\b(ehc_edge_[a-z0-9_]+)/g), ...readFileSync(DASHBOARD, 'utf8').matchAll(/\b(ehc_edge_[a-z0-9_]+)/g)].map((m) => m[1]!));
    assert.ok(used.size >= 15, `${used.size} metrics used`);
    const missing = [...used].filter((m) => !served.has(m));
    assert.equal(missing, [], 'metrics used by the rules/dashboard but not served');
    // a gauge for every component state
    for (const m of ['ehc_edge_health', 'ehc_edge_card_up', 'ehc_edge_upstream_up', 'ehc_edge_upstream_latency_seconds', 'ehc_edge_scanner_up', 'ehc_edge_outbox_depth', 'ehc_edge_audit_failures_total']) assert.ok(served.has(m), m);
    assert.match(text, /^ehc_edge_card_up\{driver="soft"\} 1$/m);
    assert.match(text, /^ehc_edge_info\{version="[^"]+",org_code="[^"]+",term_id="[^"]+"\} 1$/m);
  } finally {
    await a.stop();
  }
});

test.run();
