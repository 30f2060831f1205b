/**
 * The HIS/kiosk port: a Hono app. Field names follow the national protocol's snake_case.
 *   POST /v1/verify        verify a code                       (API key)
 *   GET  /v1/status        card, upstream, outbox, scanners …  (API key)
 *   GET  /metrics          Prometheus text                     (API key)
 *   GET  /v1/health        liveness/readiness for probes       (open, no details)
 *   GET  /v1/openapi.json  this contract                       (open)
 * Other parts (scan stream, deferred answers, status page, stats, admin) add their routes through
 * `extensions`, sharing the same auth middleware.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from './body-limit.ts';
import { HTTPException } from 'hono/http-exception';
import type { Registry } from 'prom-client';
import { EhcError, asEhcError } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import type { Verifier, VerifyResult } from '../verify/types.ts';
import { apiKeyAuth, type AuthFailure } from './auth.ts';
import { readAuth as rolesReadAuth } from './roles.ts';
import { AUTH_THROTTLE_DEFAULTS, AuthThrottle, throttled } from './auth-throttle.ts';
import { httpStatusFor } from './http-status.ts';
import { parseVerifyBody } from './verify-body.ts';
import { corsPolicy, type CorsOptions } from './cors.ts';
import { openApiDocument, type OpenApiPaths } from './openapi.ts';
import { rawResponses } from './raw-response.ts';

export interface HisContext {
  /** the HIS API-key middleware (behind the failed-auth throttle), for extension routes */
  auth: MiddlewareHandler;
  /** HIS or viewer key (read-only routes; roleOf(c) tells which), behind the same throttle */
  readAuth: MiddlewareHandler;
  /** the failed-auth throttle: put another key class behind it with `throttled(ctx.throttle, 'viewer', check)` */
  throttle: AuthThrottle;
  log: Logger;
  /** answer an EhcError the way every route does */
  fail(c: Context, error: EhcError): Response;
}

/** A part that adds routes to the HIS port, describing them for the OpenAPI document. */
export interface HisExtension {
  paths?: OpenApiPaths;
  install(app: Hono, ctx: HisContext): void;
}

export interface HisDeps {
  verifier: Verifier;
  apiKeys: readonly string[];
  /** read-only keys (src/his/roles.ts) */
  viewerKeys?: readonly string[];
  bodyLimitBytes: number;
  log: Logger;
  registry: Registry;
  status: () => Promise<Record<string, unknown>>;
  /** readiness for /v1/health: false → 503 */
  /** `down`: why each failed check is down, in words an operator can act on (no keys, no personal data) */
  ready: () => Promise<{ ok: boolean; checks: Record<string, boolean>; down?: Record<string, string> }>;
  onAuthFailure?: (c: Context, why: AuthFailure, presented: string | undefined) => void;
  /** failed-auth throttle shared by every key class (default: AUTH_THROTTLE_DEFAULTS, no audit) */
  authThrottle?: AuthThrottle;
  extensions?: HisExtension[];
  /** cross-origin access for browser pages (src/his/cors.ts); none when absent or empty */
  cors?: CorsOptions;
}

export function verifyAnswer(result: VerifyResult): Record<string, unknown> {
  const { upstream, ...rest } = result;
  return { ...(upstream ?? {}), ...rest };
}

/** An error of reading a body the client stopped sending. */
function isClientAbort(err: unknown): boolean {
  const e = err as { name?: string; code?: string; cause?: { code?: string } } | undefined;
  return e?.name === 'AbortError' || e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.cause?.code === 'ECONNRESET' || (err instanceof Error && /aborted/i.test(err.message));
}

/** The methods the app serves on a path (for 405 + Allow), from its route table. */
function methodsFor(app: Hono, path: string): string[] {
  const methods = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    const pattern = new RegExp('^' + r.path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\/:[A-Za-z_]+/g, '/[^/]+').replace(/\*/g, '.*') + '$');
    if (pattern.test(path)) methods.add(r.method);
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

export function createHisApp(deps: HisDeps): Hono {
  const app = new Hono();
  const log = deps.log;
  const fail = (c: Context, error: EhcError) => c.json(error.toJSON(), httpStatusFor(error));
  const throttle = deps.authThrottle ?? new AuthThrottle({ ...AUTH_THROTTLE_DEFAULTS, logger: log });
  const auth = throttled(throttle, 'his', apiKeyAuth({ keys: deps.apiKeys, onFailure: deps.onAuthFailure }));
  const readAuth = throttled(throttle, 'viewer', rolesReadAuth({ hisKeys: deps.apiKeys, viewerKeys: deps.viewerKeys ?? [], onFailure: deps.onAuthFailure }));

  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    // the client went away while its body was being read: nothing to answer and nothing wrong here
    if (c.req.raw.signal.aborted || isClientAbort(err)) {
      log.debug('client aborted the request', { path: c.req.path });
      return c.json({ ret_code: '9001', ret_msg: 'bad parameters: the request was aborted' }, 400);
    }
    const error = asEhcError(err, '8009');
    if (error.code === '8009') log.error('unhandled error on the HIS port', { path: c.req.path, error: err });
    return fail(c, error);
  });
  app.notFound((c) => {
    const allowed = methodsFor(app, c.req.path);
    if (allowed.length > 0) {
      c.header('Allow', allowed.join(', '));
      return c.json({ ret_code: '1005', ret_msg: `method ${c.req.method} not allowed on ${c.req.path}; allowed: ${allowed.join(', ')}` }, 405);
    }
    return c.json({ ret_code: '1005', ret_msg: `no such endpoint: ${c.req.method} ${c.req.path}` }, 404);
  });
  // the scan stream writes to the Node response itself, with the headers CORS and auth settled on: its
  // starter goes outside every other middleware (src/his/raw-response.ts)
  app.use('/v1/scans', rawResponses);
  const corsMiddleware = deps.cors ? corsPolicy(deps.cors) : undefined;
  if (corsMiddleware) app.use('*', corsMiddleware); // first: a preflight is answered before auth

  app.get('/v1/health', async (c) => {
    const r = await deps.ready();
    return c.json({ status: r.ok ? 'ok' : 'unavailable', checks: r.checks, ...(r.down ? { down: r.down } : {}) }, r.ok ? 200 : 503);
  });
  const document = openApiDocument((deps.extensions ?? []).flatMap((e) => (e.paths ? [e.paths] : [])));
  app.get('/v1/openapi.json', (c) => c.json(document));

  app.post(
    '/v1/verify',
    auth,
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: (c) => c.json({ ret_code: '9001', ret_msg: `bad parameters: body larger than ${deps.bodyLimitBytes} bytes` }, 413),
    }),
    async (c) => {
      if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
        throw new EhcError('9001', 'bad parameters: send Content-Type: application/json');
      }
      let raw: unknown;
      try {
        raw = await c.req.json();
      } catch {
        throw new EhcError('9001', 'bad parameters: body is not valid JSON');
      }
      const body = parseVerifyBody(raw);
      const result = await deps.verifier.verify({
        ehealthCode: body.ehealth_code,
        treatmentCode: body.treatment_code,
        operatorId: body.operator_id,
        operatorName: body.operator_name,
        defer: body.defer,
      });
      log.debug('verified', { route: 'his', decided_by: result.decided_by, out_verify_no: result.out_verify_no, code_type: result.code_type });
      return c.json(verifyAnswer(result), result.decided_by === 'deferred' ? 202 : 200);
    },
  );

  app.get('/v1/status', readAuth, async (c) => c.json(await deps.status()));
  app.get('/metrics', readAuth, async (c) => c.text(await deps.registry.metrics(), 200, { 'content-type': deps.registry.contentType }));

  const ctx: HisContext = { auth, readAuth, throttle, log, fail };
  for (const extension of deps.extensions ?? []) extension.install(app, ctx);
  return app;
}
