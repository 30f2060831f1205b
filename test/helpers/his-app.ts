/**
 * The HIS app as production builds it (createHisApp: key auth behind the failed-auth throttle, /v1/status,
 * /metrics, 405/404, error mapping), for tests of the parts mounted on it. Only what a test gives differs:
 * the status sources, extensions, audit sink and clock; the verifier refuses (these tests do not verify).
 */
import type { Hono } from 'hono';
import { EhcError } from '../../src/errors.ts';
import { createHisApp, type HisExtension } from '../../src/his/app.ts';
import type { AuditSink } from '../../src/his/auth.ts';
import { AUTH_THROTTLE_DEFAULTS, AuthThrottle } from '../../src/his/auth-throttle.ts';
import { collectStatus, type StatusSources } from '../../src/ops/status.ts';
import { memoryLogger, type Logger } from '../../src/platform/log.ts';
import { createRegistry } from '../../src/platform/metrics.ts';

export interface TestHisApp {
  apiKeys: string[];
  viewerKeys?: string[];
  /** GET /v1/status answers collectStatus over these */
  status?: StatusSources;
  extensions?: HisExtension[];
  audit?: AuditSink;
  logger?: Logger;
  clock?: () => number;
}

export function hisTestApp(o: TestHisApp): Hono {
  const log = o.logger ?? memoryLogger();
  return createHisApp({
    verifier: { verify: async () => Promise.reject(new EhcError('9001', 'this test app does not verify')) },
    apiKeys: o.apiKeys,
    viewerKeys: o.viewerKeys,
    bodyLimitBytes: 16384,
    log,
    registry: createRegistry(false),
    status: async () => (o.status ? ((await collectStatus(o.status)) as unknown as Record<string, unknown>) : {}),
    ready: async () => ({ ok: true, checks: {} }),
    authThrottle: new AuthThrottle({ ...AUTH_THROTTLE_DEFAULTS, audit: o.audit, logger: log, clock: o.clock }),
    extensions: o.extensions,
  });
}

/** An extension of plain routes behind the HIS key (`ctx.auth`), for a test's own endpoints. */
export function routesBehindKey(install: (app: Hono, auth: Parameters<HisExtension['install']>[1]['auth']) => void): HisExtension {
  return { install: (app, ctx) => install(app, ctx.auth) };
}
