/**
 * OpenAPI 3.1 description of the HIS/kiosk port. A test keeps it in sync with the routes the app
 * really serves (test/his.test.ts).
 */
import { verifyBodySchema } from './verify-body.ts';

const error = {
  type: 'object',
  required: ['ret_code', 'ret_msg'],
  properties: { ret_code: { type: 'string', description: '附录A §5 return code' }, ret_msg: { type: 'string' } },
};
export const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const secured = [{ apiKey: [] as string[] }];

const verifyResult = {
  type: 'object',
  required: ['ret_code', 'ret_msg', 'decided_by', 'code_type', 'ehealth_card_id', 'out_verify_no', 'out_verify_time', 'term_id'],
  properties: {
    ret_code: { const: '0000' },
    ret_msg: { type: 'string' },
    decided_by: { enum: ['local', 'upstream', 'cross-domain', 'offline-local', 'deferred'] },
    code_type: { enum: ['dynamic', 'static'] },
    ehcin: { type: 'string' },
    ehcappid: { type: 'string' },
    ehealth_card_id: { type: 'string' },
    id_type: { type: 'string' },
    id_no: { type: 'string' },
    user_name: { type: 'string' },
    expires_at: { type: 'string', format: 'date-time' },
    identity_check_required: { type: 'boolean', description: 'static code: check identity another way (§5.2.3)' },
    clock_suspect: { type: 'boolean', description: 'decided locally while the system clock was suspect (verify.clock.policy accept-and-flag)' },
    offline: { type: 'boolean' },
    out_verify_no: { type: 'string', maxLength: 32 },
    out_verify_time: { type: 'string', pattern: '^[0-9]{14}$' },
    term_id: { type: 'string' },
  },
  additionalProperties: { description: 'identity fields returned by the home card system (user_sex, mobile_phone, birthday, …)' },
};

const baseDocument = {
  openapi: '3.1.0',
  info: {
    title: 'ehc-edge HIS/kiosk API',
    version: '1',
    description:
      'Every answer is listed under its operation. Secured operations may also answer 401 (no, unknown or malformed key) and 429 (too many failed authentications from this address; Retry-After). Any operation may answer 503 when the HIS port is at its connection limit (the reserve serves /v1/health, /v1/status, /metrics and /status only; Retry-After). A method a path does not serve answers 405 with Allow; an unknown path 404 (1005).',
  },
  components: {
    securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'an entry of his.apiKeys' }, adminKey: { type: 'http', scheme: 'bearer', description: 'an entry of admin.apiKeys (a HIS or viewer key is refused: 401)' } },
    schemas: { Error: error, VerifyRequest: verifyBodySchema, VerifyResult: verifyResult },
  },
  paths: {
    '/v1/verify': {
      post: {
        summary: 'Verify a health-card QR code',
        security: secured,
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/VerifyRequest' } } } },
        responses: {
          200: { description: 'verified (0000)', content: { 'application/json': { schema: { $ref: '#/components/schemas/VerifyResult' } } } },
          202: { description: 'deferred: queued for the home card system; the answer follows on /v1/scans and /v1/verify/{out_verify_no}' },
          400: errorResponse('malformed body (9001)'),
          401: errorResponse('no or unknown API key (1010)'),
          413: errorResponse('body too large (9001)'),
          422: errorResponse('code rejected: 2001 expired, 2002 illegal, 2003 validity empty, 2004 validity illegal, 3001 no record'),
          502: errorResponse('the home card system answered something unusable (9003 digest check failed, 1xxx)'),
          503: errorResponse('crypto card (8008/2005) or home card system (8001/8002/8004) unavailable'),
        },
      },
    },
    '/v1/status': { get: { summary: 'Component states: card, upstream/VPN, outbox, scanners, version, uptime', security: secured, responses: { 200: { description: 'status object' }, 401: errorResponse('no or unknown API key') } } },
    '/v1/health': { get: { summary: 'Readiness for probes (no details that need a key)', responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } } } },
    '/v1/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
    '/metrics': { get: { summary: 'Prometheus metrics', security: secured, responses: { 200: { description: 'text/plain exposition format' }, 401: errorResponse('no or unknown API key') } } },
  } as Record<string, Record<string, unknown>>,
};

export type OpenApiPaths = Record<string, Record<string, unknown>>;

const commonResponses = {
  unauthorized: errorResponse('no, unknown or malformed API key (1010)'),
  throttled: errorResponse('too many failed authentications from this address (1010); see Retry-After'),
  busy: errorResponse('busy (8009): the HIS port is at its connection limit, or (scan stream) at scan.maxSubscribers; see Retry-After'),
};

/** The answers every operation can give besides its own: 401/429 behind a key, 503 when busy. */
function withCommonResponses(paths: OpenApiPaths): OpenApiPaths {
  const out: OpenApiPaths = {};
  for (const [p, item] of Object.entries(paths)) {
    out[p] = {};
    for (const [method, op] of Object.entries(item)) {
      const o = op as { security?: unknown[]; responses?: Record<string, unknown> };
      const responses = { ...(o.responses ?? {}) };
      if (o.security?.length) {
        responses['401'] ??= commonResponses.unauthorized;
        responses['429'] ??= commonResponses.throttled;
      }
      responses['503'] ??= commonResponses.busy;
      out[p]![method] = { ...o, responses };
    }
  }
  return out;
}

/** The document of one app: the core routes plus the paths its extensions describe. */
export function openApiDocument(extra: OpenApiPaths[] = []): typeof baseDocument {
  const paths: OpenApiPaths = { ...baseDocument.paths };
  for (const more of extra) for (const [p, item] of Object.entries(more)) paths[p] = { ...(paths[p] ?? {}), ...item };
  return { ...baseDocument, paths: withCommonResponses(paths) };
}
