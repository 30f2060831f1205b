/**
 * The scan stream over WebSocket, beside SSE, for clients that prefer it: `GET /v1/scans/ws` upgraded
 * (library: `ws`, the WebSocket server most Node projects and Hono's node adapter build on; maintained,
 * no native parts needed). Same events, filters and resume as `/v1/scans`:
 *
 *   ws://<his>/v1/scans/ws?station=…&scanner=…&ticket=…[&lastEventId=N]
 *   or the ticket as a subprotocol: new WebSocket(url, ['ehc-ticket.' + ticket])
 *
 * Authentication is a stream ticket (POST /v1/stream-tickets with the API key): browsers cannot send
 * headers on a WebSocket either, and one mechanism for both stream kinds keeps the rules in one place.
 * Each message is one JSON text `{"id", "event", "data"}` (event: scan, result, error, scanner, or gap
 * with {lastEventId, oldestAvailable}); `lastEventId` replays from the ring like `Last-Event-ID`; a socket
 * opened without it gets `{"id": N, "event": "ready", "data": {"lastEventId": N}}` first, N the hub's newest
 * id (every later event is above it: a reconnect with N before any other event misses nothing). The
 * sockets are sinks of the hub's one fan-out (src/scan/fanout.ts), beside the SSE readers: every event
 * is serialised once for all sockets (one Buffer, sent as a text frame without a copy per socket); a
 * socket whose send buffer exceeds the limit is closed with 1013 (reconnect with lastEventId), never
 * buffered without bound; the subscriber limit is shared with SSE (the fan-out counts both).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ScanHub, StreamEvent, StreamFilter } from '../scan/hub.ts';
import type { Batch, StreamSink } from '../scan/fanout.ts';
import type { StreamTickets } from './stream-tickets.ts';

export interface ScanWebSocketDeps {
  hub: ScanHub;
  tickets: StreamTickets;
  maxSubscribers: number;
  /** bytes a socket may have unsent before it is closed */
  maxBufferedBytes?: number;
  keepAliveMs?: number;
}

const PATH = '/v1/scans/ws';
const ENCODING = 'ws';
const encode = (ev: StreamEvent) => Buffer.from(JSON.stringify({ id: ev.id, event: ev.type, data: { id: ev.id, ...ev.data } }));

function refuse(socket: Duplex, status: number, reason: string, body: Record<string, string>): void {
  const json = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
}

/** An upgrade this module takes: /v1/scans/ws asking for `Upgrade: websocket` (the HIS server's shouldUpgradeCallback). */
export function isScanWebSocketUpgrade(req: IncomingMessage): boolean {
  const path = (req.url ?? '/').split('?', 1)[0];
  return path === PATH && String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

/** Handles upgrades of `server` on /v1/scans/ws; returns a stop function. */
export function attachScanWebSocket(server: { on(event: 'upgrade', fn: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown }, deps: ScanWebSocketDeps): () => void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024, handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith('ehc-ticket.')) ?? false });
  const limit = deps.maxBufferedBytes ?? 1 << 20;
  const fanout = deps.hub.streams;
  fanout.encoding(ENCODING, encode);
  if (deps.keepAliveMs !== undefined) fanout.configure({ keepAliveMs: deps.keepAliveMs });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://his.invalid');
    if (url.pathname !== PATH) return refuse(socket, 404, 'Not Found', { ret_code: '1005', ret_msg: `no such endpoint: upgrade ${url.pathname}` });
    const fromProtocol = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .find((p) => p.startsWith('ehc-ticket.'))
      ?.slice('ehc-ticket.'.length);
    const ticket = url.searchParams.get('ticket') ?? fromProtocol;
    const filter: StreamFilter = {};
    const station = url.searchParams.get('station') ?? undefined;
    const scanner = url.searchParams.get('scanner') ?? undefined;
    if (station) filter.station = station;
    if (scanner) filter.scanner = scanner;
    if (!ticket) return refuse(socket, 401, 'Unauthorized', { ret_code: '1010', ret_msg: '无权限 no permission: a stream ticket is required (POST /v1/stream-tickets)' });
    const r = deps.tickets.redeem(ticket, filter);
    if (!r.ok) return refuse(socket, 401, 'Unauthorized', { ret_code: '1010', ret_msg: `无权限 no permission: stream ticket ${r.why === 'filter' ? 'was issued for another filter' : r.why === 'expired' ? 'expired' : 'unknown or already used'}` });
    if (fanout.size >= deps.maxSubscribers) return refuse(socket, 503, 'Service Unavailable', { ret_code: '8009', ret_msg: `scan stream subscriber limit (${deps.maxSubscribers}) reached` });
    const lastRaw = url.searchParams.get('lastEventId');
    const lastId = lastRaw !== null && /^\d{1,15}$/.test(lastRaw) ? Number(lastRaw) : undefined;
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, filter, lastId));
  });

  function serve(ws: WebSocket, filter: StreamFilter, lastId: number | undefined): void {
    let open = true;
    const send = (bytes: Buffer) => {
      if (!open) return;
      if (ws.bufferedAmount > limit) {
        open = false;
        fanout.remove(sink);
        return ws.close(1013, 'too slow: reconnect with lastEventId');
      }
      ws.send(bytes, { binary: false });
    };
    const sink: StreamSink = {
      filter,
      encoding: ENCODING,
      sentUpTo: 0,
      write: (batch: Batch) => batch.parts.forEach(send),
      keepAlive: () => {
        if (ws.readyState === ws.OPEN) ws.ping();
      },
    };
    if (!fanout.add(sink, deps.maxSubscribers)) return ws.close(1013, `scan stream subscriber limit (${deps.maxSubscribers}) reached`);
    // added first, then the ring: nothing published in between is missed (the fan-out skips what was replayed)
    if (lastId === undefined) {
      const at = deps.hub.lastId;
      send(Buffer.from(JSON.stringify({ id: at, event: 'ready', data: { lastEventId: at } })));
    } else {
      const { events, gap } = deps.hub.since(lastId, filter);
      if (gap) send(Buffer.from(JSON.stringify({ event: 'gap', data: { lastEventId: lastId, oldestAvailable: deps.hub.oldestId } })));
      for (const ev of events) send(fanout.bytes(ev, ENCODING));
    }
    sink.sentUpTo = deps.hub.lastId;
    ws.on('close', () => {
      open = false;
      fanout.remove(sink);
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', () => ws.close(1008, 'this stream only sends'));
  }

  return () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  };
}
