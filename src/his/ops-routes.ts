/**
 * Operations routes as HIS app extensions (src/his/app.ts `extensions`):
 *   GET /status, /status/*            the status page (static; its data comes from GET /v1/status)
 *   GET /v1/stats/usecard-scene       附录E usecard_scene_list       (HIS key)
 *   GET /v1/stats/read-terms          附录E read_term_list           (HIS key)
 *   GET /v1/stats/errors              errors by return code          (HIS key)
 * Admin routes are added by their owners behind adminAuth (src/his/admin-auth.ts), never the HIS key.
 */
import type { HisExtension } from './app.ts';
import type { OpenApiPaths } from './openapi.ts';
import { statusPage } from './status-page.ts';
import { statsRoutes, type StatsRoutesOptions } from './stats-routes.ts';

const secured = [{ apiKey: [] as string[] }];
const denied = { description: 'no or unknown API key' };
const badParams = { description: 'bad parameters (ret_code 9001)' };

/** The OpenAPI paths of these routes (each app builds its own document from its extensions). */
function opsPaths(): OpenApiPaths {
  const paths: OpenApiPaths = {};
  const documentPath = (p: string, item: Record<string, unknown>) => (paths[p] = { ...(paths[p] ?? {}), ...item });
  documentPath('/status', { get: { summary: 'Status page (static HTML; asks for an HIS key, then polls /v1/status)', responses: { 200: { description: 'text/html' } } } });
  for (const asset of ['/status/', '/status/status.js', '/status/status.css']) documentPath(asset, { get: { summary: 'Status page asset', responses: { 200: { description: 'static' } } } });
  documentPath('/v1/stats/usecard-scene', {
    get: {
      summary: '附录E §6.2.2 usecard_scene_list: uses per day, org, online/offline and treatment step',
      security: secured,
      parameters: ['from', 'to', 'org_code', 'page_no', 'page_size'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } })),
      responses: { 200: { description: '{ usecard_scene_list, page_no, page_size, total_count }' }, 400: badParams, 401: denied },
    },
  });
  documentPath('/v1/stats/read-terms', {
    get: {
      summary: '附录E §6.1.4 read_term_list from the scanner registry',
      security: secured,
      parameters: ['page_no', 'page_size'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } })),
      responses: { 200: { description: '{ read_term_list, page_no, page_size, total_count }' }, 400: badParams, 401: denied },
    },
  });
  documentPath('/v1/stats/errors', {
    get: {
      summary: 'Errors by return code within a window',
      security: secured,
      parameters: [{ name: 'window_s', in: 'query', required: false, schema: { type: 'integer' } }],
      responses: { 200: { description: '{ window_s, errors }' }, 400: badParams, 401: denied },
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
