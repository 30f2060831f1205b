/** 附录E statistics on the HIS port: the usage statistics (src/ops/stats.ts) served as Hono routes. */
import { Hono } from 'hono';
import { YMD, readTermList, type ScannerInfo, type SiteInfo, type UsageStats } from '../ops/stats.ts';

export interface StatsRoutesOptions {
  stats: UsageStats;
  site: SiteInfo;
  /** the scanner registry's current entries */
  scanners: () => readonly ScannerInfo[];
}

function badParam(name: string, why: string) {
  return { ret_code: '9001', ret_msg: `参数错误 bad parameters: ${name}: ${why}` };
}

/**
 * Hono routes to mount behind HIS auth: `app.route('/v1/stats', statsRoutes({ stats, site, scanners }))`.
 * GET /usecard-scene?from=yyyyMMdd&to=yyyyMMdd&org_code=&page_no=&page_size=  → { usecard_scene_list, page_no, page_size, total_count }
 * GET /read-terms?page_no=&page_size=                                      → { read_term_list, page_no, page_size, total_count }
 * GET /errors?window_s=3600                                                → { window_s, errors: ErrorCount[] }
 */
export function statsRoutes(options: StatsRoutesOptions): Hono {
  const app = new Hono();
  const paging = (q: (k: string) => string | undefined): { pageNo: number; pageSize: number } | string => {
    const pageNo = Number(q('page_no') ?? 1);
    const pageSize = Number(q('page_size') ?? 100);
    if (!Number.isInteger(pageNo) || pageNo < 1) return 'page_no';
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) return 'page_size';
    return { pageNo, pageSize };
  };
  app.get('/usecard-scene', (c) => {
    const from = c.req.query('from');
    const to = c.req.query('to');
    for (const [k, v] of [['from', from], ['to', to]] as const) if (v !== undefined && !YMD.test(v)) return c.json(badParam(k, 'yyyyMMdd expected'), 400);
    const p = paging((k) => c.req.query(k));
    if (typeof p === 'string') return c.json(badParam(p, 'positive integer (page_size ≤ 1000) expected'), 400);
    const page = options.stats.usecardSceneList({ from, to, orgCode: c.req.query('org_code'), ...p });
    return c.json({ usecard_scene_list: page.rows, page_no: page.page_no, page_size: page.page_size, total_count: page.total_count });
  });
  app.get('/read-terms', (c) => {
    const p = paging((k) => c.req.query(k));
    if (typeof p === 'string') return c.json(badParam(p, 'positive integer (page_size ≤ 1000) expected'), 400);
    const rows = readTermList(options.scanners(), options.site);
    return c.json({
      read_term_list: rows.slice((p.pageNo - 1) * p.pageSize, p.pageNo * p.pageSize),
      page_no: p.pageNo,
      page_size: p.pageSize,
      total_count: rows.length,
    });
  });
  app.get('/errors', (c) => {
    const w = Number(c.req.query('window_s') ?? 3600);
    if (!Number.isInteger(w) || w < 1 || w > 86_400) return c.json(badParam('window_s', '1..86400 expected'), 400);
    return c.json({ window_s: w, errors: options.stats.recentErrors(w) });
  });
  return app;
}
