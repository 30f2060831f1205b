/**
 * HIS port routes for scanners:
 *   GET  /v1/scans          Server-Sent Events: `scan`, `result`, `error`, `scanner` events, each with
 *                           its sequence number as `id`; `?station=` / `?scanner=` filter; a
 *                           reconnect with `Last-Event-ID` (or `?lastEventId=`) replays what was
 *                           missed from the ring, and a `gap` event says when more was missed than the
 *                           ring holds; a stream opened without one begins with a `ready` event whose
 *                           id is the hub's newest (the position a reconnect resumes from, even one
 *                           before any other event). Results carry the same fields as the /v1/verify answer (the
 *                           stream is authenticated like /v1/verify). The readers are sinks of the
 *                           hub's fan-out (src/scan/fanout.ts: each event serialised once, one socket
 *                           write per reader and round); the route runs behind every middleware and
 *                           then writes to Node's response itself (src/his/raw-response.ts). At most
 *                           scan.maxSubscribers streams, SSE and WebSocket together (503 beyond); a
 *                           reader more than scan.subscriberBuffer events behind gets a gap and is closed.
 *   GET  /v1/scanners       scanners, their ids, state and reading-terminal numbers
 *   POST /v1/scans/inject   {text, scanner?, station?}: a scan from a virtual scanner (demos)
 * Auth: the app's Bearer middleware, passed in as `auth`, is applied to these paths.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Hono, MiddlewareHandler } from 'hono';
import AjvModule from 'ajv';
import { sseText, type ScanHub, type StreamEvent, type StreamFilter } from '../scan/hub.ts';
import { httpChunk, type Batch, type StreamFanout, type StreamSink } from '../scan/fanout.ts';
import type { HisContext, HisExtension } from './app.ts';
import { roleOf, viewerView } from './roles.ts';
import { errorResponse } from './openapi.ts';
import { nodeBindings, rawResponse, rawResponses } from './raw-response.ts';
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

const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');
const KEEP_ALIVE_CHUNK = httpChunk(KEEP_ALIVE);
/**
 * The first event of a stream opened without Last-Event-ID: the id it starts after (the hub's newest,
 * the one every later event is above). A client that reconnects before any other event resumes from it;
 * without it (a comment only, before) its reconnect started at "now" and lost what came in between.
 */
export const readyEvent = (lastEventId: number): Buffer => Buffer.from(`id: ${lastEventId}\nevent: ready\ndata: ${JSON.stringify({ lastEventId })}\n\n`);
/** a reader dropped with a gap whose socket never takes the gap is cut off after this long */
const DROP_GRACE_MS = 10_000;
const DEFAULT_MAX_SUBSCRIBERS = 256;
const gapEvent = (data: Record<string, unknown>) => Buffer.from(`event: gap\ndata: ${JSON.stringify(data)}\n\n`);
/** the event as a viewer key sees it (no identity fields), serialised once per event */
const viewerWire = (ev: StreamEvent): Buffer => Buffer.from(sseText({ ...ev, data: viewerView(ev.data) as Record<string, unknown>, wire: undefined }));

/**
 * One SSE reader on the Node response. Each fan-out round is ONE socket write of the bytes its group
 * shares, already framed as an HTTP/1.1 chunk once for the group (Node's res.write would frame and cork
 * per reader: four writes and a tick each); the head, the ready event, the replay and the closing
 * gap go through res as usual (same socket, in order). While the socket wants a drain, rounds wait in a
 * queue of at most `bufferLimit` events (references to the shared Buffers, no copies); one more and the
 * reader gets a `gap` event (the last id it was written, so it reconnects with Last-Event-ID) and is
 * closed: never buffered without end.
 */
class SseSink implements StreamSink {
  sentUpTo = 0;
  #writtenUpTo = 0;
  #queue: Batch[] = [];
  #queued = 0;
  #closed = false;
  readonly #socket: Socket;
  /** the body is chunked (HTTP/1.1); an HTTP/1.0 reader gets the bytes as they are, until close (known once the head is written) */
  #chunkedBody?: boolean;

  constructor(
    readonly res: ServerResponse,
    readonly filter: StreamFilter,
    readonly encoding: string,
    readonly bufferLimit: number,
    readonly fanout: StreamFanout,
  ) {
    this.#socket = res.socket as Socket;
    this.#socket.on('drain', () => this.#drain());
    res.on('close', () => this.close());
  }

  /** write through res (the ready event, a replay from the ring) */
  writeNow(bytes: Buffer, lastId?: number): void {
    this.res.write(bytes);
    if (lastId !== undefined) this.#writtenUpTo = lastId;
  }

  get #chunked(): boolean {
    return (this.#chunkedBody ??= (this.res as unknown as { chunkedEncoding?: boolean }).chunkedEncoding === true);
  }

  #send(bytes: Buffer, framed?: Buffer): void {
    this.#socket.write(this.#chunked ? (framed ?? httpChunk(bytes)) : bytes);
  }

  write(batch: Batch): void {
    if (this.#closed || this.#socket.destroyed) return;
    if (this.#queue.length > 0 || this.#socket.writableNeedDrain) {
      this.#queue.push(batch);
      this.#queued += batch.count;
      if (this.#queued > this.bufferLimit) this.#drop();
      return;
    }
    this.#send(batch.joined, this.#chunked ? batch.chunk : undefined);
    this.#writtenUpTo = batch.lastId;
  }

  keepAlive(): void {
    if (!this.#closed && this.#queue.length === 0 && !this.#socket.writableNeedDrain) this.#send(KEEP_ALIVE, KEEP_ALIVE_CHUNK);
  }

  #drain(): void {
    if (this.#closed || this.#queue.length === 0) return;
    const q = this.#queue;
    this.#queue = [];
    this.#queued = 0;
    if (q.length === 1) this.#send(q[0]!.joined, this.#chunked ? q[0]!.chunk : undefined);
    else this.#send(Buffer.concat(q.map((b) => b.joined)));
    this.#writtenUpTo = q.at(-1)!.lastId;
  }

  #drop(): void {
    this.close();
    this.#queue = [];
    this.res.end(gapEvent({ lastEventId: this.#writtenUpTo, reason: 'slow-reader', bufferLimit: this.bufferLimit }));
    const timer = setTimeout(() => this.res.destroy(), DROP_GRACE_MS);
    timer.unref?.();
    this.res.once('close', () => clearTimeout(timer));
  }

  close(): void {
    this.#closed = true;
    this.fanout.remove(this);
  }
}

export function registerScanRoutes(app: Hono<any>, deps: ScanRouteDeps): void {
  const { hub } = deps;
  const fanout = hub.streams;
  fanout.encoding('sse-viewer', viewerWire);
  if (deps.keepAliveMs !== undefined) fanout.configure({ keepAliveMs: deps.keepAliveMs });
  // outermost of this file's middleware (src/his/app.ts mounts it outside CORS and auth as well)
  app.use('/v1/scans', rawResponses);
  if (deps.auth) {
    // '/v1/scans/*' also matches '/v1/scans' itself: one registration each, so auth runs once per request
    const read = deps.readAuth ?? deps.auth;
    app.use('/v1/scans/*', (c, next) => (c.req.path === '/v1/scans' && c.req.method === 'GET' ? read(c, next) : deps.auth!(c, next)));
    app.use('/v1/scanners', read);
  }

  const maxSubscribers = deps.maxSubscribers ?? DEFAULT_MAX_SUBSCRIBERS;
  const bufferLimit = deps.subscriberBuffer ?? 256;
  const busy = () => ({ ret_code: '8009', ret_msg: `busy: ${maxSubscribers} scan streams open (scan.maxSubscribers)` });
  app.get('/v1/scans', (c) => {
    if (fanout.size >= maxSubscribers) {
      c.header('Retry-After', '5');
      return c.json(busy(), 503);
    }
    const filter: StreamFilter = {};
    const station = c.req.query('station');
    const scanner = c.req.query('scanner');
    if (station) filter.station = station;
    if (scanner) filter.scanner = scanner;
    const lastRaw = c.req.header('Last-Event-ID') ?? c.req.query('lastEventId');
    const lastId = lastRaw !== undefined && /^\d{1,15}$/.test(lastRaw) ? Number(lastRaw) : undefined;
    c.header('Content-Type', 'text/event-stream');
    c.header('Cache-Control', 'no-cache');
    c.header('Connection', 'keep-alive');
    c.header('X-Accel-Buffering', 'no');
    if (c.req.method === 'HEAD') return c.body(null, 200);
    if (!nodeBindings(c)) return c.json({ ret_code: '9005', ret_msg: 'the scan stream needs the Node HTTP server' }, 501);
    const encoding = roleOf(c) === 'viewer' ? 'sse-viewer' : 'sse';
    const seenAt = hub.lastId;
    // written to the Node response once every middleware has run (CORS, auth): src/his/raw-response.ts
    return rawResponse(c, (res, headers) => {
      if (!res.socket || res.socket.destroyed) return; // the client left before its stream began
      const sink = new SseSink(res, filter, encoding, bufferLimit, fanout);
      if (!fanout.add(sink, maxSubscribers)) {
        // another stream took the last place between the check above and now
        sink.close();
        res.writeHead(503, { ...headers, 'content-type': 'application/json', 'retry-after': '5' }).end(JSON.stringify(busy()));
        return;
      }
      res.writeHead(200, headers);
      // the ring first (what a reconnecting client missed, or what was published since the check above),
      // then the fan-out from the newest id on; the sink was added first, so nothing falls in between
      const { events, gap } = hub.since(lastId ?? seenAt, filter);
      if (lastId === undefined) sink.writeNow(readyEvent(seenAt), seenAt);
      else if (gap) sink.writeNow(gapEvent({ lastEventId: lastId, oldestAvailable: hub.oldestId }));
      if (events.length) sink.writeNow(Buffer.concat(events.map((ev) => fanout.bytes(ev, encoding))), events.at(-1)!.id);
      sink.sentUpTo = hub.lastId;
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
            { name: 'lastEventId', in: 'query', description: 'Last-Event-ID as a query parameter, for a browser that opens a new EventSource (with a new ticket) to resume; a value that is not 1–15 digits is ignored, as in the header', schema: { type: 'string' } },
            { name: 'ticket', in: 'query', description: 'a stream ticket (POST /v1/stream-tickets) instead of the Authorization header, for browsers', schema: { type: 'string' } },
          ],
          responses: {
            200: {
              description:
                'events scan, result, error, scanner (each with its id; ids never go back, across restarts and clock steps); ready: {lastEventId} first when the stream was opened without Last-Event-ID, its id the newest so far (every later event is above it; a client that reconnects with it before any other event misses nothing); and gap: {lastEventId, oldestAvailable} when more was missed than the ring holds (scan.streamBuffer), or {lastEventId, reason: "slow-reader", bufferLimit} before the server closes a reader that fell more than scan.subscriberBuffer events behind (reconnect with Last-Event-ID)',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            503: errorResponse(`busy (8009): scan.maxSubscribers (${deps.maxSubscribers ?? DEFAULT_MAX_SUBSCRIBERS} here) streams are open, SSE and WebSocket together, or the HIS port is at its connection limit; see Retry-After`),
          },
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
