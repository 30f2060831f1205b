/**
 * HIS port routes for scanners:
 *   GET  /v1/scans          Server-Sent Events: `scan`, `result`, `error`, `scanner` events, each with
 *                           its sequence number as `id`; `?station=` / `?scanner=` filter; a
 *                           reconnect with `Last-Event-ID` (or `?lastEventId=`) replays what was
 *                           missed from the ring, and a `gap` event says when more was missed than the
 *                           ring holds. Results carry the same fields as the /v1/verify answer (the
 *                           stream is authenticated like /v1/verify).
 *   GET  /v1/scanners       scanners, their ids, state and reading-terminal numbers
 *   POST /v1/scans/inject   {text, scanner?, station?}: a scan from a virtual scanner (demos)
 * Auth: the app's Bearer middleware, passed in as `auth`, is applied to these paths.
 */
import type { Hono, MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import AjvModule from 'ajv';
import { matches, sseText, type ScanHub, type StreamEvent, type StreamFilter } from '../scan/hub.ts';
import type { HisContext, HisExtension } from './app.ts';
import { roleOf, viewerView } from './roles.ts';
import { errorResponse } from './openapi.ts';
import type { InjectRequest, ScanRouteSource } from '../scan/index.ts';

const Ajv = AjvModule as unknown as typeof AjvModule.default;

export interface ScanRouteDeps extends ScanRouteSource {
  /** Bearer auth middleware of the HIS app; applied to every route here when given */
  auth?: MiddlewareHandler;
  /** HIS or viewer key for the read-only routes (stream, scanner list); viewers get no identity fields */
  readAuth?: MiddlewareHandler;
  /** keep-alive comment interval (default 15 s) */
  keepAliveMs?: number;
}

const ajv = new Ajv({ allErrors: false, strict: true });
const injectSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['text'],
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 4096 },
    scanner: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,32}$' },
    station: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const;
const validateInject = ajv.compile(injectSchema);

const encoder = new TextEncoder();
const KEEP_ALIVE = encoder.encode(': keep-alive\n\n');
/** the event's bytes, serialised once by the hub for every subscriber */
const wireOf = (ev: StreamEvent): Uint8Array => (ev.wire ??= encoder.encode(sseText(ev)));
/** the event as a viewer key sees it (no identity fields), also serialised once per event */
const viewerWire = new WeakMap<StreamEvent, Uint8Array>();
const viewerWireOf = (ev: StreamEvent): Uint8Array => {
  let w = viewerWire.get(ev);
  if (!w) viewerWire.set(ev, (w = encoder.encode(sseText({ ...ev, data: viewerView(ev.data), wire: undefined } as StreamEvent))));
  return w;
};

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts);
}


export function registerScanRoutes(app: Hono<any>, deps: ScanRouteDeps): void {
  const { hub } = deps;
  if (deps.auth) {
    // '/v1/scans/*' also matches '/v1/scans' itself: one registration each, so auth runs once per request
    const read = deps.readAuth ?? deps.auth;
    app.use('/v1/scans/*', (c, next) => (c.req.path === '/v1/scans' && c.req.method === 'GET' ? read(c, next) : deps.auth!(c, next)));
    app.use('/v1/scanners', read);
  }

  const maxSubscribers = deps.maxSubscribers ?? 256;
  const bufferLimit = deps.subscriberBuffer ?? 256;
  let streams = 0;
  app.get('/v1/scans', (c) => {
    if (streams >= maxSubscribers) {
      c.header('Retry-After', '5');
      return c.json({ ret_code: '8009', ret_msg: `busy: ${maxSubscribers} scan streams open (scan.maxSubscribers)` }, 503);
    }
    const filter: StreamFilter = {};
    const station = c.req.query('station');
    const scanner = c.req.query('scanner');
    if (station) filter.station = station;
    if (scanner) filter.scanner = scanner;
    const lastRaw = c.req.header('Last-Event-ID') ?? c.req.query('lastEventId');
    const lastId = lastRaw !== undefined && /^\d{1,15}$/.test(lastRaw) ? Number(lastRaw) : undefined;
    c.header('Cache-Control', 'no-store');
    c.header('X-Accel-Buffering', 'no');
    streams++;
    const wireFor = roleOf(c) === 'viewer' ? viewerWireOf : wireOf;
    return streamSSE(c, async (stream) => {
      const queue: Array<StreamEvent | 'keep-alive'> = [];
      let wake: (() => void) | undefined;
      let done = false;
      /** set when this reader fell more than bufferLimit events behind: it gets a gap and is closed */
      let overflowedAfter: number | undefined;
      let sentUpTo = 0;
      // subscribe first, then read the ring: nothing published in between can be missed
      const unsubscribe = hub.subscribe((ev) => {
        if (done || !matches(ev, filter)) return;
        if (queue.length >= bufferLimit) {
          // a reader that cannot keep up is dropped, not buffered without bound: it reconnects with
          // Last-Event-ID and gets the ring (or a gap event)
          overflowedAfter = sentUpTo;
          queue.length = 0;
          return stop();
        }
        queue.push(ev);
        const w = wake;
        wake = undefined;
        w?.();
      });
      function stop(): void {
        done = true;
        unsubscribe();
        const w = wake;
        wake = undefined;
        w?.();
      }
      stream.onAbort(stop);
      const keepAlive = setInterval(() => {
        queue.push('keep-alive');
        const w = wake;
        wake = undefined;
        w?.();
      }, deps.keepAliveMs ?? 15000);
      try {
        if (lastId !== undefined) {
          const { events, gap } = hub.since(lastId, filter);
          if (gap) await stream.writeSSE({ event: 'gap', data: JSON.stringify({ lastEventId: lastId, oldestAvailable: hub.oldestId }) });
          if (events.length) {
            await stream.write(concat(events.map(wireFor)));
            sentUpTo = events.at(-1)!.id;
          }
        } else {
          await stream.write(': connected\n\n');
        }
        while (!done) {
          if (queue.length === 0) {
            await new Promise<void>((resolve) => (wake = resolve));
            continue;
          }
          // everything queued goes out in one write (one chunk on the socket under bursts)
          const parts: Uint8Array[] = [];
          let last = sentUpTo;
          for (const ev of queue.splice(0, queue.length)) {
            if (ev === 'keep-alive') parts.push(KEEP_ALIVE);
            else if (ev.id > last) {
              parts.push(wireFor(ev));
              last = ev.id;
            }
          }
          if (parts.length) await stream.write(concat(parts));
          sentUpTo = last;
        }
        if (overflowedAfter !== undefined) {
          await stream.writeSSE({ event: 'gap', data: JSON.stringify({ lastEventId: sentUpTo, reason: 'slow-reader', bufferLimit }) });
        }
      } finally {
        clearInterval(keepAlive);
        stop();
        streams--;
      }
    });
  });

  app.get('/v1/scanners', (c) => {
    const list = deps.scanners?.() ?? [];
    return c.json({ scanners: roleOf(c) === 'viewer' ? list.map(viewerView) : list });
  });

  app.post('/v1/scans/inject', async (c) => {
    if (!deps.inject) return c.json({ ret_code: '9005', ret_msg: 'scan injection is not available' }, 501);
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ ret_code: '9001', ret_msg: 'body must be JSON' }, 400);
    }
    if (!validateInject(body)) {
      const e = validateInject.errors?.[0];
      return c.json({ ret_code: '9001', ret_msg: `bad request: ${e?.instancePath || '(body)'} ${e?.message ?? 'invalid'}` }, 400);
    }
    const out = await deps.inject(body as InjectRequest);
    return c.json({ ret_code: '0000', ...out });
  });
}

/** The scan routes as a HIS extension, documented for the OpenAPI document. */
export function scanExtension(
  deps: Omit<ScanRouteDeps, 'auth'>,
  /** wraps the key check of the scan routes, e.g. to also accept a stream ticket (src/his/stream-tickets.ts) */
  streamAuth?: (auth: MiddlewareHandler, ctx: HisContext) => MiddlewareHandler,
): HisExtension {
  const secured = [{ apiKey: [] as string[] }];
  return {
    paths: {
      '/v1/scans': {
        get: {
          summary: 'Live stream (Server-Sent Events) of scans and their verification results; Last-Event-ID replays missed events from a bounded ring',
          security: secured,
          parameters: [
            { name: 'station', in: 'query', schema: { type: 'string' } },
            { name: 'scanner', in: 'query', schema: { type: 'string' } },
            { name: 'Last-Event-ID', in: 'header', schema: { type: 'string' } },
            { name: 'ticket', in: 'query', description: 'a stream ticket (POST /v1/stream-tickets) instead of the Authorization header, for browsers', schema: { type: 'string' } },
          ],
          responses: { 200: { description: 'events scan, result, error, scanner, gap', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
        },
      },
      '/v1/scanners': { get: { summary: 'Scanners with their scannerId, name, station, STM number and state', security: secured, responses: { 200: { description: '{scanners: [...]}', content: { 'application/json': { schema: { type: 'object', required: ['scanners'], properties: { scanners: { type: 'array' } } } } } } } } },
      '/v1/scans/inject': {
        post: {
          summary: 'Inject a scan as a virtual scanner (demos, tests)',
          security: secured,
          requestBody: { required: true, content: { 'application/json': { schema: injectSchema } } },
          responses: {
            200: { description: 'the pipeline outcome', content: { 'application/json': { schema: { type: 'object', required: ['ret_code', 'status'], properties: { ret_code: { const: '0000' }, status: { type: 'string' } } } } } },
            400: errorResponse('bad parameters (9001): no body, not JSON, or not the schema'),
            501: errorResponse('scan injection is not available (9005)'),
          },
        },
      },
    },
    install: (app, ctx) =>
      registerScanRoutes(app, { ...deps, auth: streamAuth ? streamAuth(ctx.auth, ctx) : ctx.auth, readAuth: streamAuth ? streamAuth(ctx.readAuth, ctx) : ctx.readAuth }),
  };
}
