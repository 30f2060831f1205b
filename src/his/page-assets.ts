/**
 * What the appliance's own static pages (status page, desk page) share: the strict headers — CSP self
 * only with no inline script or style, no framing, no referrer — and an uncached asset answer.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

export function pageHeaders(): MiddlewareHandler {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      connectSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
    },
    referrerPolicy: 'no-referrer',
  });
}

export function asset(c: Context, body: string, type: string): Response {
  c.header('Content-Type', type);
  c.header('Cache-Control', 'no-store');
  return c.body(body);
}
