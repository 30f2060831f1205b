import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ConfigError, configPathFrom, loadConfig, parseConfig } from '../src/config/load.ts';
import { tempDir } from './helpers/tmp.ts';

const DEFAULT = path.resolve('appliance.config.json');
const base = () => JSON.parse(readFileSync(DEFAULT, 'utf8')) as Record<string, any>;

function problem(doc: unknown): { key: string; why: string } {
  try {
    parseConfig(doc, '/etc/ehc-edge/appliance.config.json');
  } catch (err) {
    assert.instance(err, ConfigError);
    const e = err as ConfigError;
    assert.is(e.file, '/etc/ehc-edge/appliance.config.json');
    return { key: e.key, why: e.why };
  }
  return { key: '', why: 'accepted' };
}

test('the shipped appliance.config.json is valid and fills in documented defaults', () => {
  const c = loadConfig(DEFAULT);
  assert.is(c.stateDir, path.resolve('var'));
  assert.is(c.upstream.crossDomainUrl, c.upstream.url);
  assert.is(c.upstream.dialect, 'national-v3.1');
  assert.is(c.card.keyFile, path.join(c.stateDir, 'soft-card.keys.json'));
  assert.equal(c.card.keys, { ehcid: 1, validity: 2, storage: 3, mac: 4, sign: 1 });
  assert.is(c.verify.clockSkewSeconds, 30);
});

test('the first wrong key is named with why', () => {
  const unknown = base();
  unknown.site.colour = 'red';
  assert.equal(problem(unknown), { key: 'site.colour', why: 'unknown key' });
  const missing = base();
  delete missing.upstream.appId;
  assert.is(problem(missing).key, 'upstream.appId');
  const policy = base();
  policy.verify.policy = 'yolo';
  assert.is(problem(policy).key, 'verify.policy');
  const ehcin = base();
  ehcin.site.localEhcins = ['3502Z0001'];
  assert.is(problem(ehcin).key, 'site.localEhcins.0');
  const listen = base();
  listen.his.listen = 'localhost';
  assert.is(problem(listen).key, 'his.listen');
  const plain = base();
  plain.upstream.url = 'http://10.1.2.3/ehc';
  assert.equal(problem(plain), { key: 'upstream.url', why: 'plain http is only allowed to a loopback host' });
  const insecure = base();
  insecure.upstream.insecure = false;
  assert.is(problem(insecure).key, 'upstream.url');
  const sm3 = base();
  sm3.his.apiKeys = ['sm3:xyz-not-hex-not-hex'];
  assert.is(problem(sm3).key, 'his.apiKeys.0');
  const sdf = base();
  sdf.card.driver = 'sdf';
  assert.is(problem(sdf).key, 'card.sdf');
});

test('--config beats EHC_EDGE_CONFIG beats ./appliance.config.json', () => {
  assert.is(configPathFrom(['--config', 'a.json'], { EHC_EDGE_CONFIG: 'b.json' }, '/x'), '/x/a.json');
  assert.is(configPathFrom(['--config=/etc/c.json'], {}, '/x'), '/etc/c.json');
  assert.is(configPathFrom([], { EHC_EDGE_CONFIG: 'b.json' }, '/x'), '/x/b.json');
  assert.is(configPathFrom([], {}, '/x'), '/x/appliance.config.json');
});

test('npm start with a wrong config exits 2 naming the file and the key', () => {
  const { dir, cleanup } = tempDir();
  try {
    const doc = base();
    doc.verify.clockSkewSeconds = -1;
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(doc));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', file], { encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, `${file}: verify.clockSkewSeconds: must be >= 0`);
    writeFileSync(file, '{"site": ');
    const j = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, EHC_EDGE_CONFIG: file } });
    assert.is(j.status, 2);
    assert.match(j.stderr, /not valid JSON/);
  } finally {
    cleanup();
  }
});

test.run();
