/**
 * Drives the operations modules with a made-up population, the way the appliance does, logging to
 * stdout with the real logger and writing audit/stats files under the state folder given as argv[2].
 * Run as a child process by test/no-pii-in-logs.test.ts, which then greps everything it wrote.
 * Code paths here pass clear identities on purpose: the point is that nothing clear comes out.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_KEY_INDEXES } from '../../src/crypto/card.ts';
import { issueHealthCode } from '../../src/crypto/issue-code.ts';
import { RoutingVerifier } from '../../src/verify/verifier.ts';
import { createLogger } from '../../src/platform/log.ts';
import { AuditTrail } from '../../src/ops/audit.ts';
import { UsageStats } from '../../src/ops/stats.ts';
import { opsExtensions } from '../../src/his/ops-routes.ts';
import { opsObserver } from '../../src/ops/observer.ts';
import { adminAuth } from '../../src/his/admin-auth.ts';
import { FakeUpstream, MemoryOutbox, softCard, LOCAL_EHCIN, FOREIGN_EHCIN } from './fixtures.ts';
import { population } from './population.ts';
import { listen } from './serve.ts';
import { hisTestApp } from './his-app.ts';

const stateDir = process.argv[2]!;
const count = Number(process.argv[3] ?? 40);
const people = population(count, Number(process.argv[4] ?? 99));
const HIS_KEY = 'pii-driver-his-key-0001';
const ADMIN_KEY = 'pii-driver-admin-key-001';

const log = createLogger({ level: 'debug' }); // stdout, as under systemd
const card = await softCard(stateDir, 'soft-card.keys.json');
const audit = await AuditTrail.open({ dir: path.join(stateDir, 'audit'), card, macKey: DEFAULT_KEY_INDEXES.mac, logger: log });
const stats = await UsageStats.open({ file: path.join(stateDir, 'stats', 'usage.json'), site: { orgCode: '45678901-2' }, defaultScene: '010101', logger: log });
const upstream = new FakeUpstream();
const verifier = new RoutingVerifier({
  card,
  upstream,
  outbox: new MemoryOutbox(),
  settings: { localEhcins: [LOCAL_EHCIN], policy: 'local-first', clockSkewSeconds: 30, treatmentCode: '010101', operatorId: 'desk-op', operatorName: '挂号员', termId: '3502A0001STMA0001' },
  observers: [
    opsObserver({ audit, stats, defaultOperator: 'desk-op' }),
    // a careless observer: logs whole results and requests, clear identities included
    { verified: (result, request) => log.info('verified', { result, request }), rejected: (error, request) => log.warn(`rejected ${error.message}`, { error, request }) },
  ],
});

for (const [i, p] of people.entries()) {
  upstream.identity = { id_type: '01', id_no: p.idNo, user_name: p.name, mobile_phone: p.phone };
  const foreign = i % 3 === 1;
  const expired = i % 7 === 3;
  const code = await issueHealthCode(card, {
    identity: { idType: p.idType, idNo: p.idNo },
    ehcappid: `${foreign ? FOREIGN_EHCIN : LOCAL_EHCIN}APPA0001`,
    expiresAt: new Date(Date.now() + (expired ? -3600_000 : 3600_000)),
  });
  try {
    const r = await verifier.verify({ ehealthCode: code, scannerId: `serial:/dev/ttyUSB${i % 2}`, treatmentCode: i % 2 ? '010105' : undefined });
    // ID and phone numbers inside text are scrubbed by pattern; a name in free text cannot be recognised,
    // so names only ever go in fields (the logger's rule: constant messages, data in fields)
    log.debug(`patient ${r.id_no} phone ${p.phone}`, { user_name: r.user_name, userName: p.name });
  } catch (err) {
    log.error('verification failed', { err, id_no: p.idNo, user_name: p.name, phone: p.phone });
  }
}

// the HIS port: auth failures (one "key" is somebody's ID number), status, stats
// the production HIS app (createHisApp): /v1/status over these sources, stats as the appliance mounts them
const app = hisTestApp({
  apiKeys: [HIS_KEY],
  audit,
  logger: log,
  extensions: [
    ...opsExtensions({ stats, site: { orgCode: '45678901-2' }, scanners: () => [] }),
    {
      install: (a) => {
        a.use('/admin/*', adminAuth({ apiKeys: [ADMIN_KEY], maxFailedAttempts: 3, audit, logger: log }));
        a.post('/admin/scanners', (c) => c.json({ ok: true }));
      },
    },
  ],
  status: {
  version: '0.1.0',
  startedAt: new Date(),
  site: { orgCode: '45678901-2', termId: '3502A0001STMA0001' },
  scanners: () => [{ id: 'serial:/dev/ttyUSB0', state: 'ready', lastScanAt: null, detail: `last read ${people[0]!.idNo}` }],
  card: () => card.health(),
  upstream: () => upstream.health(),
  outbox: () => ({ depth: 0, bytes: 0, oldestAgeSeconds: null, dead: 0, full: false }),
  errors: (w) => stats.recentErrors(w),
  audit: () => audit.state(),
  recent: (n) => audit.recentVerifications(n),
  },
});
const srv = await listen(app);
const get = async (p: string, key?: string, method = 'GET') => (await fetch(srv.url + p, { method, headers: key ? { Authorization: `Bearer ${key}` } : {} })).text();
await get('/v1/status', people[1]!.idNo);
await get('/v1/status', `${people[2]!.phone}0000000`);
for (const k of ['wrong-admin-key-0000', people[3]!.idNo, people[4]!.idNo, ADMIN_KEY]) await get('/admin/scanners', k, 'POST');
await audit.flush();
writeFileSync(path.join(stateDir, 'status.json'), await get('/v1/status', HIS_KEY));
writeFileSync(path.join(stateDir, 'stats.json'), await get('/v1/stats/usecard-scene', HIS_KEY));
await srv.close();
await stats.close();
await audit.close();
await card.close();
log.info('driver done', { people: people.length });
