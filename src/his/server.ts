/** Serve the HIS app on `his.listen`, over HTTPS when `his.tls` is configured. */
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { ApplianceConfig } from '../config/types.ts';

export interface HisServer {
  url: string;
  server: ServerType;
  close(): Promise<void>;
}

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

export function startHisServer(app: Hono, his: ApplianceConfig['his']): Promise<HisServer> {
  const { host, port } = splitHostPort(his.listen);
  const tls = his.tls ? { cert: readFileSync(his.tls.cert), key: readFileSync(his.tls.key), ...(his.tls.ca ? { ca: readFileSync(his.tls.ca) } : {}), minVersion: 'TLSv1.2' as const } : undefined;
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, hostname: host, port, ...(tls ? { createServer: createHttpsServer, serverOptions: tls } : {}) },
      (info: AddressInfo) => {
        const shownHost = info.family === 'IPv6' ? `[${info.address}]` : info.address;
        resolve({
          url: `${tls ? 'https' : 'http'}://${shownHost}:${info.port}`,
          server,
          close: () =>
            new Promise<void>((r) => {
              server.close(() => r());
              (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            }),
        });
      },
    );
    server.once('error', reject);
  });
}
