import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseConfig, ConfigError } from '../src/config/load.ts';

const base = () => JSON.parse(readFileSync(new URL('../appliance.config.json', import.meta.url), 'utf8'));

test('audit/admin/log sections: defaults, and wrong values named', () => {
  const c = parseConfig(base(), '/etc/ehc-edge/appliance.config.json');
  assert.equal(c.audit, { retainDays: 400, maxBytes: 2_147_483_648, onFailure: 'refuse' });
  assert.equal(c.admin, { apiKeys: ['demo-admin-key-change-me-01'], maxFailedAttempts: 5, lockoutSeconds: 900 });
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
});

test.run();
