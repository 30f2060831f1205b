/**
 * `GET /v1/verify/{out_verify_no}`: the answer to a deferred verification, once the home card system
 * has given it (the same fields as a POST /v1/verify answer), or `pending` while it is queued.
 */
import type { Hono } from 'hono';
import { EhcError, isReturnCode } from '../errors.ts';
import type { OutboxLookup } from '../store/outbox.ts';
import type { HisExtension } from './app.ts';
import { errorResponse } from './openapi.ts';

export function deferredRoute(lookup: (outVerifyNo: string) => Promise<OutboxLookup | null>): HisExtension {
  const paths = { '/v1/verify/{out_verify_no}': {
    get: {
      summary: 'The answer to a deferred verification',
      security: [{ apiKey: [] }],
      parameters: [{ name: 'out_verify_no', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9A-Za-z_-]{1,32}$' } }],
      responses: {
        200: { description: 'answered: ret_code 0000 with identity fields', content: { 'application/json': { schema: { type: 'object', required: ['ret_code', 'state', 'out_verify_no'], properties: { ret_code: { const: '0000' }, state: { const: 'answered' } } } } } },
        202: { description: 'still queued for the home card system', content: { 'application/json': { schema: { type: 'object', required: ['ret_code', 'state', 'out_verify_no'], properties: { ret_code: { const: '0000' }, state: { const: 'pending' } } } } } },
        400: errorResponse('out_verify_no is not 1–32 of [0-9A-Za-z_-] (9001)'),
        404: errorResponse('no deferred verification with this serial (3001)'),
        422: errorResponse('the home card system rejected the code (its ret_code)'),
        500: errorResponse('the home card system answered a code the port does not map (9999)'),
        502: errorResponse('the home card system refused the request (1xxx/9xxx)'),
      },
    },
  } };
  const install = (app: Hono, { auth, fail }: Parameters<HisExtension['install']>[1]) => {
    app.get('/v1/verify/:out_verify_no', auth, async (c) => {
      const ovn = c.req.param('out_verify_no');
      if (!/^[0-9A-Za-z_-]{1,32}$/.test(ovn)) return fail(c, new EhcError('9001', 'bad parameters: out_verify_no'));
      const found = await lookup(ovn);
      if (!found) return c.json({ ret_code: '3001', ret_msg: `no deferred verification ${ovn}` }, 404);
      if (found.state === 'pending') return c.json({ ret_code: '0000', ret_msg: 'queued for the home card system', state: 'pending', out_verify_no: ovn, attempts: found.attempts, created_at: found.createdAt }, 202);
      if (found.retCode !== '0000') return fail(c, new EhcError(isReturnCode(found.retCode) ? found.retCode : '9999', found.retMsg ?? 'rejected by the home card system'));
      return c.json({ ...(found.identity ?? {}), ret_code: '0000', ret_msg: found.retMsg ?? 'ok', state: 'answered', out_verify_no: ovn, answered_at: found.answeredAt });
    });
  };
  return { paths, install };
}
