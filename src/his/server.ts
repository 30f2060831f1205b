/**
 * Serve the HIS app on `his.listen`, over HTTPS when `his.tls` is configured, inside the connection
 * budget of `his.connections` (src/his/connection-budget.ts): per-address and total limits, a reserve
 * for probes and the status page, and the header/body/idle timeouts.
 *
 * Upgrades: Node 20 hands every request with an `Upgrade` header to an 'upgrade' listener once there is
 * one (the scan WebSocket's), so a client offering `Upgrade: h2c` (Java's HttpClient by default) got that
 * listener's 404 on any route. Where the runtime has `shouldUpgradeCallback` (Node ≥ 24.9, 22.21: the
 * package's runtime), `upgrade` decides which requests are upgrades; every other one — h2c included — is
 * an ordinary HTTP/1.1 request to the routes.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { serve, type HttpBindings, type Http2Bindings, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { ApplianceConfig } from '../config/schema.ts';
import { CONNECTION_DEFAULTS, ConnectionBudget, isReservePath, type ConnectionLimits } from './connection-budget.ts';
import { gateConnections } from './connection-gate.ts';

export interface HisServer {
  url: string;
  server: ServerType;
  budget: ConnectionBudget;
  close(): Promise<void>;
}

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

type HisListen = Pick<ApplianceConfig['his'], 'listen' | 'tls'> & { connections?: ConnectionLimits };

const busy = () =>
  new Response(JSON.stringify({ ret_code: '8009', ret_msg: 'busy: the HIS port is at its connection limit; this connection serves /v1/health and the status page only' }), {
    status: 503,
    headers: { 'content-type': 'application/json', 'retry-after': '1', connection: 'close' },
  });

/** Whether Node `version` (process.versions.node) has http.createServer's shouldUpgradeCallback: 24.9+, 22.21+ on 22. */
export function hasUpgradeCallback(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 24 || (major === 24 && minor >= 9) || (major === 22 && minor >= 21);
}

export interface HisServerOptions {
  /** which Upgrade requests go to the 'upgrade' listener (the rest are plain requests), where the runtime can say so */
  upgrade?: (req: IncomingMessage) => boolean;
}

export function startHisServer(app: Hono, his: HisListen, options: HisServerOptions = {}): Promise<HisServer> {
  const { host, port } = splitHostPort(his.listen);
  const limits = his.connections ?? CONNECTION_DEFAULTS;
  const budget = new ConnectionBudget(limits);
  const tls = his.tls ? { cert: readFileSync(his.tls.cert), key: readFileSync(his.tls.key), ...(his.tls.ca ? { ca: readFileSync(his.tls.ca) } : {}), minVersion: 'TLSv1.2' as const } : undefined;
  const timeouts = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // how often Node checks the two timeouts above (default 30 s would let a slow sender run long past them)
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  };
  const fetch = (req: Request, env: HttpBindings | Http2Bindings) => {
    const socket = (env as HttpBindings).incoming?.socket as (Socket & { _parent?: Socket }) | undefined;
    if (budget.isReserve(socket) || budget.isReserve(socket?._parent)) {
      const path = new URL(req.url).pathname;
      if (!isReservePath(path)) return busy();
    }
    return app.fetch(req, env);
  };
  const upgrade = options.upgrade;
  // (on an older runtime the option would be ignored: left out, so what runs is what is written)
  const upgrades = upgrade && hasUpgradeCallback() ? { shouldUpgradeCallback: upgrade } : {};
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch, hostname: host, port, serverOptions: { ...timeouts, ...upgrades, ...(tls ?? {}) }, ...(tls ? { createServer: createHttpsServer } : {}) },
      (info: AddressInfo) => {
        const shownHost = info.family === 'IPv6' ? `[${info.address}]` : info.address;
        resolve({
          url: `${tls ? 'https' : 'http'}://${shownHost}:${info.port}`,
          server,
          budget,
          close: () =>
            new Promise<void>((r) => {
              server.close(() => r());
              (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            }),
        });
      },
    );
    // the budget decides before the HTTP (or TLS) layer sees the socket: a refused one costs no parser
    gateConnections(server as unknown as NetServer, budget, (socket) => socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy()));
    server.once('error', reject);
  });
}
