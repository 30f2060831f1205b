/**
 * Operations routes as HIS app extensions (src/his/app.ts `extensions`):
 *   GET /status, /status/*            the status page (static; its data comes from GET /v1/status)
 *   GET /v1/stats/usecard-scene       附录E usecard_scene_list       (HIS key)
 *   GET /v1/stats/read-terms          附录E read_term_list           (HIS key)
 *   GET /v1/stats/errors              errors by return code          (HIS key)
 * Admin routes are added by their owners behind adminAuth (src/his/admin-auth.ts), never the HIS key.
 */
import type { HisExtension } from './app.ts';
import { statusPage } from './status-page.ts';
import { statsRoutes, type StatsRoutesOptions } from '../ops/stats.ts';

export function opsExtensions(options: StatsRoutesOptions): HisExtension[] {
  return [
    (app) => {
      app.route('/', statusPage());
    },
    (app, ctx) => {
      app.use('/v1/stats/*', ctx.auth);
      app.route('/v1/stats', statsRoutes(options));
    },
  ];
}
