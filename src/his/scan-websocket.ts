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
 * with {lastEventId, oldestAvailable}); `lastEventId` replays from the ring like `Last-Event-ID`. Every
 * event is serialised once for all sockets; a socket whose send buffer exceeds the limit is closed with
 * 1013 (reconnect with lastEventId), never buffered without bound; the subscriber limit is shared with
 * SSE (the hub counts both).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { matches, type ScanHub, type StreamEvent, type StreamFilter } from '../scan/hub.ts';
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
const texts = new WeakMap<StreamEvent, string>();
const text = (ev: StreamEvent) => {
  let t = texts.get(ev);
  if (t === undefined) texts.set(ev, (t = JSON.stringify({ id: ev.id, event: ev.type, data: { id: ev.id, ...ev.data } })));
  return t;
};

function refuse(socket: Duplex, status: number, reason: string, body: Record<string, string>): void {
  const json = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
}

/** Handles upgrades of `server` on /v1/scans/ws; returns a stop function. */
export function attachScanWebSocket(server: { on(event: 'upgrade', fn: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown }, deps: ScanWebSocketDeps): () => void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024, handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith('ehc-ticket.')) ?? false });
  const limit = deps.maxBufferedBytes ?? 1 << 20;
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
    if (deps.hub.subscribers >= deps.maxSubscribers) return refuse(socket, 503, 'Service Unavailable', { ret_code: '8009', ret_msg: `scan stream subscriber limit (${deps.maxSubscribers}) reached` });
    const lastRaw = url.searchParams.get('lastEventId');
    const lastId = lastRaw !== null && /^\d{1,15}$/.test(lastRaw) ? Number(lastRaw) : undefined;
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, filter, lastId));
  });

  function serve(ws: WebSocket, filter: StreamFilter, lastId: number | undefined): void {
    let sentUpTo = 0;
    const send = (t: string) => {
      if (ws.bufferedAmount > limit) return ws.close(1013, 'too slow: reconnect with lastEventId');
      ws.send(t);
    };
    // subscribe first, then read the ring: nothing published in between is missed (ids dedupe)
    const unsubscribe = deps.hub.subscribe((ev) => {
      if (ev.id > sentUpTo && matches(ev, filter)) send(text(ev));
    });
    if (lastId !== undefined) {
      const { events, gap } = deps.hub.since(lastId, filter);
      if (gap) send(JSON.stringify({ event: 'gap', data: { lastEventId: lastId, oldestAvailable: deps.hub.oldestId } }));
      for (const ev of events) send(text(ev));
      sentUpTo = events.at(-1)?.id ?? 0;
    }
    const keepAlive = setInterval(() => ws.ping(), deps.keepAliveMs ?? 15000);
    ws.on('close', () => {
      clearInterval(keepAlive);
      unsubscribe();
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', () => ws.close(1008, 'this stream only sends'));
  }

  return () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  };
}
