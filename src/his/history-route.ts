/**
 * GET /v1/history?hours=N (1..192, default 24): the persisted per-minute series and events timeline
 * (src/ops/history.ts) for the status page's charts. HIS or viewer key: counts and codes only.
 */
import type { HisExtension } from './app.ts';
import type { History } from '../ops/history.ts';

export function historyExtension(history: Pick<History, 'series'>): HisExtension {
  const secured = [{ apiKey: [] as string[] }];
  return {
    paths: {
      '/v1/history': {
        get: {
          summary: 'Per-minute history (verifications by route and code, latency p50/p99, outbox depth and drain, upstream reachability and latency) and events, persisted across restarts',
          security: secured,
          parameters: [{ name: 'hours', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 192 } }],
          responses: { 200: { description: '{ stepSeconds, t[], verified[], rejected[], p50[], p99[], outboxDepth[], drained[], upstreamUp[], upstreamMs[], byRoute, byCode, events[] }' }, 400: { description: 'bad parameters (ret_code 9001)' }, 401: { description: 'no or unknown API key' } },
        },
      },
    },
    install: (app, ctx) => {
      app.get('/v1/history', ctx.readAuth, (c) => {
        const raw = c.req.query('hours') ?? '24';
        const hours = Number(raw);
        if (!/^\d{1,3}$/.test(raw) || hours < 1 || hours > 192) return c.json({ ret_code: '9001', ret_msg: 'bad parameters: hours must be 1..192' }, 400);
        c.header('Cache-Control', 'no-store');
        return c.json(history.series(hours));
      });
    },
  };
}
