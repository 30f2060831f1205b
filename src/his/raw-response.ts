/**
 * Routes that write straight to Node's http.ServerResponse (the scan stream), still behind every Hono
 * middleware: the route returns `rawResponse(c, start)`; when the whole middleware chain has run (CORS
 * adds `Vary` after the handler, auth may answer instead), `rawResponses` calls `start` with the
 * Node response and the headers the chain settled on, and tells @hono/node-server the response is
 * already sent (its `x-hono-already-sent` marker). No Web stream, no promise per write.
 *
 * `rawResponses` is mounted as the OUTERMOST middleware of the HIS app (src/his/app.ts) for the raw
 * paths; a route registered on a bare app (tests) mounts it itself, and the inner copy steps aside when
 * the outer one is there.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';

export type RawStart = (res: ServerResponse, headers: OutgoingHttpHeaders, req: IncomingMessage) => void;

const START = 'ehcRawStart';
const OUTER = 'ehcRawOuter';
/** @hono/node-server: a response with this header and no body is not written by the adapter */
const ALREADY_SENT = 'x-hono-already-sent';

const get = (c: Context, k: string) => (c.get as (k: string) => unknown)(k);
const set = (c: Context, k: string, v: unknown) => (c.set as (k: string, v: unknown) => void)(k, v);

/** The Node request/response under this Hono request (undefined outside @hono/node-server, or on HTTP/2). */
export function nodeBindings(c: Context): { incoming: IncomingMessage; outgoing: ServerResponse } | undefined {
  const env = c.env as { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
  return env?.incoming && env.outgoing && typeof env.outgoing.writeHead === 'function' ? { incoming: env.incoming, outgoing: env.outgoing } : undefined;
}

/** Answer this request by writing to the Node response yourself, once the middleware chain has run. */
export function rawResponse(c: Context, start: RawStart): Response {
  set(c, START, start);
  return c.body(null, 200);
}

function headersOf(h: Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of h) {
    if (k === ALREADY_SENT || k === 'content-length') continue;
    const prev = out[k];
    out[k] = prev === undefined ? v : `${prev}, ${v}`;
  }
  return out;
}

/** Middleware that starts the raw responses of the routes inside it. */
export const rawResponses: MiddlewareHandler = async (c, next) => {
  if (get(c, OUTER)) return next();
  set(c, OUTER, true);
  await next();
  const start = get(c, START) as RawStart | undefined;
  const node = nodeBindings(c);
  if (!start || !node || c.res.status !== 200) return;
  start(node.outgoing, headersOf(c.res.headers), node.incoming);
  // The adapter skips a response that has the marker and no body, but only a platform Response: its own
  // lightweight Response (global after serve() started) is written out from its cache regardless, and
  // Hono's `c.res =` would wrap ours in one. clone() of either kind is a platform Response; and
  // clearing c.res first keeps Hono from wrapping it.
  const marker = new Response(null, { headers: { [ALREADY_SENT]: 'true' } }).clone();
  c.res = undefined as unknown as Response;
  c.res = marker;
};
