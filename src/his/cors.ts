/**
 * CORS for browser HIS pages (config `his.cors.origins`; empty = no cross-origin access, the default).
 *
 * - Only an Origin on the allow-list, compared exactly (scheme, host, port), gets
 *   `Access-Control-Allow-Origin` (echoing that origin, with `Vary: Origin`); any other origin gets no
 *   CORS header at all, so the browser refuses the page the answer.
 * - Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here, before auth, with
 *   204: methods GET/POST, request headers Authorization, Content-Type and Last-Event-ID, cached for
 *   `his.cors.maxAgeSeconds`.
 * - Credentials: none. The port authenticates with a Bearer key or a stream ticket, never a cookie, so
 *   `Access-Control-Allow-Credentials` is never sent; a page sends the key itself
 *   (`fetch(url, {headers: {Authorization: …}})`) and `EventSource` needs no `withCredentials`.
 * - `Retry-After` is exposed, so a page can honour 429/503 answers.
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';

export interface CorsOptions {
  origins: readonly string[];
  maxAgeSeconds: number;
}

export function corsPolicy(options: CorsOptions): MiddlewareHandler | undefined {
  if (options.origins.length === 0) return undefined;
  const allowed = new Set(options.origins);
  return cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    allowMethods: ['GET', 'POST', 'OPTIONS'],
    allowHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID'],
    exposeHeaders: ['Retry-After'],
    maxAge: options.maxAgeSeconds,
    credentials: false,
  });
}
