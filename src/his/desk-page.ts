/**
 * The desk page `/desk?station=…`: the latest verified patient of one registration window, the
 * station's scanner state, and a big clear error when a code is refused. Static HTML/JS/CSS
 * (src/his/desk-page/), no data in the page itself: it asks once for an HIS key (kept in the tab's
 * sessionStorage), takes a stream ticket and follows the live scan stream — the reference an
 * integrator can copy. Names and ID numbers are shown masked per 附录B; times in China Standard Time.
 * Same headers as the status page: strict CSP (self only), no-store, no framing.
 */
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import { asset, pageHeaders } from './page-assets.ts';
import type { HisExtension } from './app.ts';

const dir = new URL('./desk-page/', import.meta.url);
const ASSETS = {
  html: readFileSync(new URL('index.html', dir), 'utf8'),
  js: readFileSync(new URL('desk.js', dir), 'utf8'),
  css: readFileSync(new URL('desk.css', dir), 'utf8'),
};

export function deskPage(): HisExtension {
  return {
    paths: {
      '/desk': { get: { summary: 'Desk page of one registration window (?station=): latest verified patient, masked; asks for an HIS key, then follows the scan stream', parameters: [{ name: 'station', in: 'query', required: false, schema: { type: 'string' } }], responses: { 200: { description: 'text/html' } } } },
      '/desk/desk.js': { get: { summary: 'Desk page asset', responses: { 200: { description: 'static' } } } },
      '/desk/desk.css': { get: { summary: 'Desk page asset', responses: { 200: { description: 'static' } } } },
    },
    install(app) {
      const page = new Hono();
      const headers = pageHeaders();
      page.use('/desk', headers);
      page.use('/desk/*', headers);
      page.get('/desk', (c) => asset(c, ASSETS.html, 'text/html; charset=utf-8'));
      page.get('/desk/desk.js', (c) => asset(c, ASSETS.js, 'text/javascript; charset=utf-8'));
      page.get('/desk/desk.css', (c) => asset(c, ASSETS.css, 'text/css; charset=utf-8'));
      app.route('/', page);
    },
  };
}
