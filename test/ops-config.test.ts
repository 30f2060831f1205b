import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseConfig, ConfigError } from '../src/config/load.ts';

const base = () => JSON.parse(readFileSync(new URL('../appliance.config.json', import.meta.url), 'utf8'));

test('audit/admin/log sections: defaults, and wrong values named', () => {
  const c = parseConfig(base(), '/etc/ehc-edge/appliance.config.json');
  assert.equal(c.audit, { retainDays: 400, maxBytes: 2_147_483_648, onFailure: 'refuse' });
  assert.equal(c.admin, { apiKeys: ['demo-admin-key-change-me-01'], maxFailedAttempts: 5, lockoutSeconds: 900, keyGraceSeconds: 86400 });
  assert.equal(c.log, { level: 'info', pii: 'mask' });
  const bad = (patch: (d: any) => void, key: string) => {
    const d = base();
    patch(d);
    assert.throws(() => parseConfig(d, 'x.json'), (e: Error) => e instanceof ConfigError && e.key === key);
  };
  bad((d) => (d.audit = { retainDays: 30 }), 'audit.retainDays');
  bad((d) => (d.audit = { onFailure: 'ignore' }), 'audit.onFailure');
  bad((d) => (d.admin.lockoutSeconds = 1), 'admin.lockoutSeconds');
  bad((d) => (d.log = { pii: 'show' }), 'log.pii');
  // simulator.keys was accepted and never read: now it is refused like any unknown key
  bad((d) => (d.simulator = { ...d.simulator, keys: { ehcid: '00'.repeat(16), validity: '11'.repeat(16) } }), 'simulator.keys');
});

test('the loaded config is frozen all the way down: a component derives its own copy instead of writing into it', () => {
  const c = parseConfig(base(), '/etc/ehc-edge/appliance.config.json');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.upstream) && Object.isFrozen(c.his.apiKeys) && Object.isFrozen(c.card.keys));
  assert.throws(() => {
    (c.upstream as { url: string }).url = 'http://elsewhere/';
  }, TypeError);
  assert.is(c.upstream.url, base().upstream.url);
});

test.run();
