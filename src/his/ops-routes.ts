/**
 * Operations routes as HIS app extensions (src/his/app.ts `extensions`):
 *   GET /status, /status/*            the status page (static; its data comes from GET /v1/status)
 *   GET /v1/stats/usecard-scene       附录E usecard_scene_list       (HIS key)
 *   GET /v1/stats/read-terms          附录E read_term_list           (HIS key)
 *   GET /v1/stats/errors              errors by return code          (HIS key)
 * Admin routes are added by their owners behind adminAuth (src/his/admin-auth.ts), never the HIS key.
 */
import type { HisExtension } from './app.ts';
import { errorResponse, type OpenApiPaths } from './openapi.ts';
import { statusPage } from './status-page.ts';
import { statsRoutes, type StatsRoutesOptions } from './stats-routes.ts';

const secured = [{ apiKey: [] as string[] }];
const badParams = errorResponse('bad parameters (ret_code 9001)');
const json = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
/** a query parameter as the stats routes read it (src/ops/stats.ts) */
const query = (name: string, schema: Record<string, unknown>, description?: string) => ({ name, in: 'query', required: false, schema, ...(description ? { description } : {}) });
const ymd = { type: 'string', pattern: '^[0-9]{8}$' };
const pageNo = { type: 'string', pattern: '^[1-9][0-9]{0,8}$' };
const pageSize = { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$' };

/** The OpenAPI paths of these routes (each app builds its own document from its extensions). */
function opsPaths(): OpenApiPaths {
  const paths: OpenApiPaths = {};
  const documentPath = (p: string, item: Record<string, unknown>) => (paths[p] = { ...(paths[p] ?? {}), ...item });
  documentPath('/status', { get: { summary: 'Status page (static HTML; asks for an HIS key, then polls /v1/status)', responses: { 200: { description: 'text/html' } } } });
  for (const asset of ['/status/', '/status/status.js', '/status/status.css', '/status/uplot.js', '/status/uplot.css']) documentPath(asset, { get: { summary: 'Status page asset', responses: { 200: { description: 'static' } } } });
  documentPath('/v1/stats/usecard-scene', {
    get: {
      summary: '附录E §6.2.2 usecard_scene_list: uses per day, org, online/offline and treatment step',
      security: secured,
      parameters: [query('from', ymd, 'yyyyMMdd (local day, CST)'), query('to', ymd, 'yyyyMMdd'), query('org_code', { type: 'string' }), query('page_no', pageNo), query('page_size', pageSize, '1..1000')],
      responses: { 200: json('{ usecard_scene_list, page_no, page_size, total_count }'), 400: badParams },
    },
  });
  documentPath('/v1/stats/read-terms', {
    get: {
      summary: '附录E §6.1.4 read_term_list from the scanner registry',
      security: secured,
      parameters: [query('page_no', pageNo), query('page_size', pageSize, '1..1000')],
      responses: { 200: json('{ read_term_list, page_no, page_size, total_count }'), 400: badParams },
    },
  });
  documentPath('/v1/stats/errors', {
    get: {
      summary: 'Errors by return code within a window',
      security: secured,
      parameters: [query('window_s', { type: 'integer', minimum: 1, maximum: 86400 })],
      responses: { 200: json('{ window_s, errors }'), 400: badParams },
    },
  });
  return paths;
}

export function opsExtensions(options: StatsRoutesOptions): HisExtension[] {
  return [
    {
      paths: opsPaths(),
      install: (app, ctx) => {
        app.route('/', statusPage());
        app.use('/v1/stats/*', ctx.auth);
        app.route('/v1/stats', statsRoutes(options));
      },
    },
  ];
}
