/**
 * The admin API on the HIS port, behind `admin.apiKeys` (src/his/admin-auth.ts: a HIS or viewer key is
 * refused with 401; no admin keys configured → 403; lockout → 429):
 *   POST /v1/admin/reload                       re-read the config file: the SIGHUP path (src/config/reload.ts)
 *   GET  /v1/admin/dead-letters?after=&limit=   the outbox's dead letters (no payload, no personal data)
 *   POST /v1/admin/dead-letters/requeue {seqs}  back to the tail of the outbox, same sealed record
 *   POST /v1/admin/dead-letters/drop {seqs}     deleted for good
 *   POST /v1/admin/scanners {scanner_id, name, station?}     name a scanner (state store, durable write)
 *   POST /v1/admin/scanners/{scanner_id}/rename {name}      a new name: in status and in later scan events
 *   GET  /v1/admin/his-keys                     ids of the accepted HIS keys (never a key)
 *   POST /v1/admin/his-keys/rotate {key_id}     a new HIS key, answered once; the old one valid for the grace
 *
 * Every action is audited (kind `admin`): who (`admin_key`: the id of the admin key, never the key), what
 * (action and its arguments) and the result; a refused action too.
 */
import AjvModule from 'ajv';
import type { Context } from 'hono';
import type { ReloadOutcome } from '../config/reload.ts';
import { EhcError } from '../errors.ts';
import type { HisExtension } from './app.ts';
import { clientAddress, keyTag, type AuditSink } from './auth.ts';
import type { HisKeyInfo, Rotation } from './admin-keys.ts';
import { errorResponse, type OpenApiPaths } from './openapi.ts';
import type { MiddlewareHandler } from 'hono';

const Ajv = AjvModule as unknown as typeof AjvModule.default;

export interface AdminRouteDeps {
  /** the admin guard (ops.adminGuard: admin.apiKeys, lockout, throttle) */
  guard: MiddlewareHandler;
  audit: AuditSink;
  reload(): Promise<ReloadOutcome>;
  outbox: {
    deadLetters(afterSeq?: number, limit?: number): Array<{ seq: number; kind: string; method: string; outVerifyNo: string; createdAt: string; attempts: number; retCode: string; reason: string; diedAt: string }>;
    isDead(seq: number): boolean;
    retryDead(seqs: number[]): number;
    dropDead(seqs: number[]): number;
  };
  scanners: {
    registerScanner(scannerId: string, who: { name: string; station?: string }): Promise<'registered' | 'exists'>;
    renameScanner(scannerId: string, name: string): Promise<{ from: string | undefined } | 'unknown'>;
  };
  keys: { list(): HisKeyInfo[]; rotate(keyId: string): Promise<Rotation | undefined> };
}

// --- request bodies: one schema each, validated here and published in the OpenAPI document
const seqsBody = {
  type: 'object',
  additionalProperties: false,
  required: ['seqs'],
  properties: { seqs: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'integer', minimum: 1, maximum: 9007199254740991 } } },
} as const;
const nameSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\u0000-\\u001f\\u007f]+$' } as const;
const registerBody = {
  type: 'object',
  additionalProperties: false,
  required: ['scanner_id', 'name'],
  properties: {
    scanner_id: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$', description: 'the id the scanner is listed under (GET /v1/scanners, ehc-edge scanners list)' },
    name: nameSchema,
    station: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' },
  },
} as const;
const renameBody = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: nameSchema } } as const;
const rotateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['key_id'],
  properties: { key_id: { type: 'string', pattern: '^[0-9a-f]{8}$', description: 'id of the HIS key to replace (GET /v1/admin/his-keys)' } },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true });
const validators = { seqs: ajv.compile(seqsBody), register: ajv.compile(registerBody), rename: ajv.compile(renameBody), rotate: ajv.compile(rotateBody) };

async function body<T>(c: Context, which: keyof typeof validators): Promise<T> {
  if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) throw new EhcError('9001', 'bad parameters: send Content-Type: application/json');
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new EhcError('9001', 'bad parameters: body is not valid JSON');
  }
  const validate = validators[which];
  if (validate(raw)) return raw as T;
  const e = validate.errors?.[0];
  const why = e?.keyword === 'additionalProperties' ? `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"` : `${e?.instancePath ? e.instancePath.slice(1) : 'body'} ${e?.message ?? 'invalid'}`;
  throw new EhcError('9001', `bad parameters: ${why}`);
}

/** The id of the admin key that called (the audit trail's `key_tag` of it), never the key. */
function adminKeyId(c: Context): string {
  return keyTag((c.req.header('Authorization') ?? '').replace(/^Bearer\s+/i, ''));
}

const secured = [{ adminKey: [] as string[] }];
const json = (description: string, schema: Record<string, unknown> = { type: 'object' }) => ({ description, content: { 'application/json': { schema } } });
const badParams = errorResponse('bad parameters (9001): not JSON, unknown field, value outside the schema');
const forbidden = errorResponse('admin API disabled: no admin.apiKeys configured (1010)');
const jsonBody = (schema: Record<string, unknown>) => ({ required: true, content: { 'application/json': { schema } } });

function adminPaths(): OpenApiPaths {
  const seqsAnswer = (verb: string) => ({
    type: 'object',
    required: [verb, 'not_dead'],
    properties: { [verb]: { type: 'integer', minimum: 0 }, not_dead: { type: 'array', items: { type: 'integer' }, description: 'seqs given that are not dead letters (nothing done for them)' } },
  });
  return {
    '/v1/admin/reload': {
      post: {
        summary: 'Re-read the config file and apply what applies without a restart (his.apiKeys, log.level): the same path as SIGHUP / systemctl reload',
        security: secured,
        responses: {
          200: json('{ applied[], needs_restart[] }', { type: 'object', required: ['applied', 'needs_restart'], properties: { applied: { type: 'array', items: { type: 'string' } }, needs_restart: { type: 'array', items: { type: 'string' } } } }),
          403: forbidden,
          422: errorResponse('the file does not pass the start-up checks (9001, ret_msg: file: key: what to fix); the running config stays'),
        },
      },
    },
    '/v1/admin/dead-letters': {
      get: {
        summary: "The outbox's dead letters, oldest first, without their payload",
        security: secured,
        parameters: [
          { name: 'after', in: 'query', required: false, schema: { type: 'string', pattern: '^[0-9]{1,15}$' }, description: 'seq to list after (paging)' },
          { name: 'limit', in: 'query', required: false, schema: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$' }, description: '1..1000 (default 100)' },
        ],
        responses: { 200: json('{ dead_letters: [{ seq, kind, method, out_verify_no, created_at, attempts, ret_code, reason, died_at }] }'), 400: badParams, 403: forbidden },
      },
    },
    '/v1/admin/dead-letters/requeue': {
      post: {
        summary: 'Move dead letters back to the tail of the outbox (same sealed record and out_verify_no, attempts reset)',
        security: secured,
        requestBody: jsonBody(seqsBody),
        responses: { 200: json('{ requeued, not_dead[] }', seqsAnswer('requeued')), 400: badParams, 403: forbidden, 503: errorResponse('outbox full (3003) or not writable (8007); also: HIS port busy (8009)') },
      },
    },
    '/v1/admin/dead-letters/drop': {
      post: {
        summary: 'Delete dead letters for good',
        security: secured,
        requestBody: jsonBody(seqsBody),
        responses: { 200: json('{ dropped, not_dead[] }', seqsAnswer('dropped')), 400: badParams, 403: forbidden },
      },
    },
    '/v1/admin/scanners': {
      post: {
        summary: 'Name a scanner (and its station): kept across restarts, shown in status and in every later scan event',
        security: secured,
        requestBody: jsonBody(registerBody),
        responses: { 201: json('{ scanner_id, name, station? }'), 400: badParams, 403: forbidden, 409: errorResponse('already registered: rename it (9001)') },
      },
    },
    '/v1/admin/scanners/{scanner_id}/rename': {
      post: {
        summary: 'Rename a scanner that is listed or registered',
        security: secured,
        parameters: [{ name: 'scanner_id', in: 'path', required: true, schema: { type: 'string', minLength: 1 } }],
        requestBody: jsonBody(renameBody),
        responses: { 200: json('{ scanner_id, name, previous_name? }'), 400: badParams, 403: forbidden, 404: errorResponse('no such scanner (1009)') },
      },
    },
    '/v1/admin/his-keys': {
      get: {
        summary: 'The HIS keys the port accepts, by id (first 8 hex of the SM3 digest), with their source and the end of a grace',
        security: secured,
        responses: { 200: json('{ keys: [{ key_id, source, created_at?, valid_until? }] }'), 403: forbidden },
      },
    },
    '/v1/admin/his-keys/rotate': {
      post: {
        summary: 'Replace a HIS key: the new key is in this answer only (kept as its sm3: digest); the old one stays valid for admin.keyGraceSeconds',
        security: secured,
        requestBody: jsonBody(rotateBody),
        responses: {
          201: json('{ key, key_id, replaced_key_id, replaced_valid_until }', { type: 'object', required: ['key', 'key_id', 'replaced_key_id', 'replaced_valid_until'], properties: { key: { type: 'string' }, key_id: { type: 'string' }, replaced_key_id: { type: 'string' }, replaced_valid_until: { type: 'string' } } }),
          400: badParams,
          403: forbidden,
          404: errorResponse('no accepted HIS key has this id (1010)'),
        },
      },
    },
  };
}

export function adminExtension(deps: AdminRouteDeps): HisExtension {
  const audited = (c: Context, action: string, detail: Record<string, unknown>, retCode?: string) =>
    deps.audit.record({ kind: 'admin', action, route: c.req.path, client: clientAddress(c), ...(retCode ? { retCode } : {}), detail: { admin_key: adminKeyId(c), ...detail } });
  /** the work of a route, given the audit of its action; its failures are audited before they are answered */
  type Audit = (detail: Record<string, unknown>, retCode?: string) => void;
  const run = (action: string, work: (c: Context, audit: Audit) => Promise<Response>) => async (c: Context) => {
    const audit: Audit = (detail, retCode) => audited(c, action, detail, retCode);
    try {
      return await work(c, audit);
    } catch (err) {
      if (err instanceof EhcError) audit({ result: 'refused', reason: err.message }, err.code);
      throw err;
    }
  };
  const splitDead = (seqs: number[]) => {
    const dead: number[] = [];
    const notDead: number[] = [];
    for (const s of new Set(seqs)) (deps.outbox.isDead(s) ? dead : notDead).push(s);
    return { dead, notDead };
  };
  return {
    paths: adminPaths(),
    install: (app) => {
      // the guard on each route (not app.use on the prefix): a method a path does not serve still answers 405
      const g = deps.guard;
      app.post(
        '/v1/admin/reload', g,
        run('admin.reload', async (c, audit) => {
          const r = await deps.reload();
          if (!r.ok) {
            audit({ result: 'refused', problem: r.problem }, '9001');
            return c.json({ ret_code: '9001', ret_msg: `config refused, the running config stays: ${r.problem}` }, 422);
          }
          audit({ result: 'ok', applied: r.applied, needs_restart: r.needsRestart });
          return c.json({ applied: r.applied, needs_restart: r.needsRestart });
        }),
      );
      app.get('/v1/admin/dead-letters', g, (c) => {
        const after = c.req.query('after') ?? '0';
        const limit = c.req.query('limit') ?? '100';
        if (!/^[0-9]{1,15}$/.test(after) || !/^([1-9][0-9]{0,2}|1000)$/.test(limit)) return c.json({ ret_code: '9001', ret_msg: 'bad parameters: after is a seq, limit 1..1000' }, 400);
        const rows = deps.outbox.deadLetters(Number(after), Number(limit));
        return c.json({
          dead_letters: rows.map((d) => ({ seq: d.seq, kind: d.kind, method: d.method, out_verify_no: d.outVerifyNo, created_at: d.createdAt, attempts: d.attempts, ret_code: d.retCode, reason: d.reason, died_at: d.diedAt })),
        });
      });
      // requeue and drop: the same answer and audit, a different outbox operation
      const deadLetters = (verb: 'requeue' | 'drop', done: 'requeued' | 'dropped', apply: (seqs: number[]) => number) =>
        app.post(
          `/v1/admin/dead-letters/${verb}`, g,
          run(`admin.dead-letters.${verb}`, async (c, audit) => {
            const { seqs } = await body<{ seqs: number[] }>(c, 'seqs');
            const { dead, notDead } = splitDead(seqs);
            const n = dead.length ? apply(dead) : 0;
            audit({ result: 'ok', seqs: dead, [done]: n, not_dead: notDead });
            return c.json({ [done]: n, not_dead: notDead });
          }),
        );
      deadLetters('requeue', 'requeued', (seqs) => deps.outbox.retryDead(seqs));
      deadLetters('drop', 'dropped', (seqs) => deps.outbox.dropDead(seqs));
      app.post(
        '/v1/admin/scanners', g,
        run('admin.scanner.register', async (c, audit) => {
          const b = await body<{ scanner_id: string; name: string; station?: string }>(c, 'register');
          const r = await deps.scanners.registerScanner(b.scanner_id, { name: b.name, ...(b.station ? { station: b.station } : {}) });
          if (r === 'exists') {
            audit({ result: 'refused', scanner_id: b.scanner_id, reason: 'already registered' }, '9001');
            return c.json({ ret_code: '9001', ret_msg: `scanner ${b.scanner_id} is registered already: rename it (POST /v1/admin/scanners/{id}/rename)` }, 409);
          }
          audit({ result: 'ok', scanner_id: b.scanner_id, scanner_name: b.name, ...(b.station ? { station: b.station } : {}) });
          return c.json({ scanner_id: b.scanner_id, name: b.name, ...(b.station ? { station: b.station } : {}) }, 201);
        }),
      );
      app.post(
        '/v1/admin/scanners/:scanner_id/rename', g,
        run('admin.scanner.rename', async (c, audit) => {
          const id = c.req.param('scanner_id') ?? '';
          const b = await body<{ name: string }>(c, 'rename');
          const r = await deps.scanners.renameScanner(id, b.name);
          if (r === 'unknown') {
            audit({ result: 'refused', scanner_id: id, reason: 'no such scanner' }, '1009');
            return c.json({ ret_code: '1009', ret_msg: `no scanner ${id} is listed or registered` }, 404);
          }
          // scanner_name, not name: a `name` field is masked as a person's name
          audit({ result: 'ok', scanner_id: id, scanner_name: b.name, ...(r.from !== undefined ? { previous_scanner_name: r.from } : {}) });
          return c.json({ scanner_id: id, name: b.name, ...(r.from !== undefined ? { previous_name: r.from } : {}) });
        }),
      );
      app.get('/v1/admin/his-keys', g, (c) => c.json({ keys: deps.keys.list() }));
      app.post(
        '/v1/admin/his-keys/rotate', g,
        run('admin.his-keys.rotate', async (c, audit) => {
          const { key_id } = await body<{ key_id: string }>(c, 'rotate');
          const r = await deps.keys.rotate(key_id);
          if (!r) {
            audit({ result: 'refused', key_id, reason: 'no such key' }, '1010');
            return c.json({ ret_code: '1010', ret_msg: `no accepted HIS key has id ${key_id}` }, 404);
          }
          // the new key itself is in the answer only: the trail gets its id
          audit({ result: 'ok', key_id: r.key_id, replaced_key_id: r.replaced_key_id, replaced_valid_until: r.replaced_valid_until });
          c.header('Cache-Control', 'no-store');
          return c.json(r, 201);
        }),
      );
    },
  };
}
