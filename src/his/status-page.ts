/**
 * The status page: a static HTML/JS/CSS page (src/his/status-page/, no framework) served at `/status`.
 * The page itself holds no data and needs no key; it polls the authenticated `GET /v1/status` with an
 * HIS API key that the operator types once and that stays in the tab's sessionStorage (gone when the tab
 * closes; no cookie, so no CSRF surface). A refused key brings the form back.
 *
 * Served with a strict Content-Security-Policy (self only, no inline script or style), no-store, and
 * frame-ancestors 'none'. The page writes text only (textContent), and the JSON it shows is masked
 * (collectStatus in src/ops/status.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Hono } from 'hono';
import { asset, pageHeaders } from './page-assets.ts';

const dir = new URL('./status-page/', import.meta.url);
// uPlot (MIT, ~50 KB) draws the history charts; served from our own origin, never from a CDN
const uplotDir = pathToFileURL(path.dirname(createRequire(import.meta.url).resolve('uplot')) + '/');
const ASSETS = {
  html: readFileSync(new URL('index.html', dir), 'utf8'),
  js: readFileSync(new URL('status.js', dir), 'utf8'),
  css: readFileSync(new URL('status.css', dir), 'utf8'),
  uplotJs: readFileSync(new URL('uPlot.iife.min.js', uplotDir), 'utf8'),
  uplotCss: readFileSync(new URL('uPlot.min.css', uplotDir), 'utf8'),
};

/** Routes `/status`, `/status/`, `/status/status.js`, `/status/status.css`, `/status/uplot.{js,css}`: mount with `app.route('/', statusPage())`. */
export function statusPage(): Hono {
  const app = new Hono();
  const headers = pageHeaders();
  app.use('/status', headers);
  app.use('/status/*', headers);
  app.get('/status', (c) => asset(c, ASSETS.html, 'text/html; charset=utf-8'));
  app.get('/status/', (c) => asset(c, ASSETS.html, 'text/html; charset=utf-8'));
  app.get('/status/status.js', (c) => asset(c, ASSETS.js, 'text/javascript; charset=utf-8'));
  app.get('/status/status.css', (c) => asset(c, ASSETS.css, 'text/css; charset=utf-8'));
  app.get('/status/uplot.js', (c) => asset(c, ASSETS.uplotJs, 'text/javascript; charset=utf-8'));
  app.get('/status/uplot.css', (c) => asset(c, ASSETS.uplotCss, 'text/css; charset=utf-8'));
  return app;
}
