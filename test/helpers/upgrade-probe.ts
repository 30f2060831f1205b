/**
 * Run by test/his-upgrade.test.ts under a given Node binary (the dev one, the package's runtime): the HIS
 * server with the scan WebSocket wired as the appliance wires it (src/his/server.ts's `upgrade`, then
 * attachScanWebSocket), no native addons (those are built for the dev runtime). It asks
 *   - GET and POST offering `Upgrade: h2c` (as Java's HttpClient does), raw over a socket,
 *   - `Upgrade: websocket` on a route that is no WebSocket,
 *   - the scan stream over WebSocket with a ticket, one published event through it,
 * and prints one JSON line with what came back. Over HTTPS when argv[2] is `{"cert","key","ca"}` (file paths).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Hono } from 'hono';
import WebSocket from 'ws';
import { startHisServer, hasUpgradeCallback } from '../../src/his/server.ts';
import { attachScanWebSocket, isScanWebSocketUpgrade } from '../../src/his/scan-websocket.ts';
import { StreamTickets } from '../../src/his/stream-tickets.ts';
import { ScanHub } from '../../src/scan/hub.ts';

interface Answer {
  status: number;
  upgradeHeader: string | null;
  body: string;
}

const pki = process.argv[2] ? (JSON.parse(process.argv[2]) as { cert: string; key: string; ca: string }) : undefined;
const ca = pki ? readFileSync(pki.ca) : undefined;

function raw(port: number, head: string, body = ''): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s: net.Socket = ca ? tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' }, () => s.end(head + body)) : net.connect(port, '127.0.0.1', () => s.end(head + body));
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (text += d));
    s.on('error', reject);
    s.on('close', () => {
      const [top = '', rest = ''] = text.split('\r\n\r\n', 2);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(top)?.[1] ?? 0);
      resolve({ status, upgradeHeader: /^upgrade:\s*(.*)$/im.exec(top)?.[1]?.trim() ?? null, body: rest });
    });
  });
}

const h2c = (method: string, path: string, body = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: his.test\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n` +
  (body ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '') +
  '\r\n';

const app = new Hono();
app.get('/v1/health', (c) => c.json({ ok: true }));
app.post('/v1/echo', async (c) => c.json({ got: await c.req.json() }));
const hub = new ScanHub(64, 1);
const tickets = new StreamTickets();
const his = await startHisServer(app, { listen: '127.0.0.1:0', ...(pki ? { tls: { cert: pki.cert, key: pki.key } } : {}) }, { upgrade: isScanWebSocketUpgrade });
const stopSocket = attachScanWebSocket(his.server as unknown as Parameters<typeof attachScanWebSocket>[0], { hub, tickets, maxSubscribers: 4 });
const port = Number(new URL(his.url).port);
try {
  const h2cGet = await raw(port, h2c('GET', '/v1/health'));
  const h2cPost = await raw(port, h2c('POST', '/v1/echo', '{"n":1}'), '{"n":1}');
  const wsElsewhere = await raw(port, 'GET /v1/health HTTP/1.1\r\nHost: his.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  const { ticket } = tickets.issue({ station: 'desk-1' });
  const ws = new WebSocket(`${his.url.replace(/^http/, 'ws')}/v1/scans/ws?station=desk-1&ticket=${ticket}`, ca ? { ca } : {});
  const message = await new Promise<string>((resolve, reject) => {
    ws.once('open', () => hub.publish('scanner', 'kiosk1', 'desk-1', { state: 'connected' }));
    // the first event after the socket's opening `ready` (its position in the stream)
    ws.on('message', (m) => JSON.parse(String(m)).event !== 'ready' && resolve(String(m)));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  ws.close();
  console.log(JSON.stringify({ node: process.versions.node, tls: Boolean(pki), upgradeCallback: hasUpgradeCallback(), h2cGet, h2cPost, wsElsewhere, websocket: JSON.parse(message) }));
} finally {
  stopSocket();
  await his.close();
}
