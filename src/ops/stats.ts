/**
 * Usage statistics in the national monitoring shapes (seed 003 材料一 附录E):
 * - `usecard_scene_list` (§6.2.2, method ehm.analysisdata.usescene.statistics): per day (`time_region`
 *   yyyyMMdd, local), per org (`org_code`), `online_or_offline`, per treatment step (`usecard_scene`,
 *   诊疗环节 code of §7.5), `usecard_scene_num`;
 * - `read_term_list` (§6.1.4, ehm.analysisdata.readterm.statistics) from the scanner registry.
 *
 * Fed by every successful verification (VerifyResult). A result decided `offline-local` (or marked
 * `offline`) counts as `offline`, every other route as `online`. Failures are counted by return code in
 * memory for the status page's "recent errors".
 *
 * Counters persist in `<stateDir>/stats/usage.json` through lowdb with the durable adapter of
 * src/store/state.ts (temp file fsync'd, rename, folder fsync: a power cut leaves the old or the new file,
 * never an empty one), written at most once a second and on close. They are operational figures, not evidence — the audit trail is the
 * evidence, and a crash can lose at most the last second of counts.
 */
import { makeDirDurably } from '../platform/durable-write.ts';
import path from 'node:path';
import { Low } from 'lowdb';
import { RETURN_CODES, isReturnCode } from '../errors.ts';
import type { VerifyResult } from '../verify/types.ts';
import { FsyncJSONFile } from '../store/state.ts';
import { localDay } from './audit.ts';
import type { Logger } from '../platform/log.ts';
import type { TerminalRow } from '../protocol/province.ts';

export type OnlineOrOffline = 'online' | 'offline';

/** 附录E §6.2.2 list row. */
export interface UsecardSceneRow {
  time_region: string;
  org_code: string;
  online_or_offline: OnlineOrOffline;
  usecard_scene: string;
  usecard_scene_num: number;
}

/** 附录E §6.1.4 list row: the reading-terminal fields of 表6.4, as the registration message sends them. */
export type ReadTermRow = TerminalRow;

export interface Page<K extends string, T> {
  page_no: number;
  page_size: number;
  total_count: number;
  list: K;
  rows: T[];
}

/** What stats needs to know of a scanner (the registry's entries map onto this). */
export interface ScannerInfo {
  id: string;
  name?: string;
  /** desk / kiosk label: 终端用途 */
  station?: string;
  /** 识读终端 number assigned by the card management system: 终端接入号 */
  stmCode?: string;
  serialNumber?: string;
  manufacturer?: string;
  /** when this scanner was first registered/seen (ISO) */
  firstSeen?: string;
}

export interface SiteInfo {
  orgCode: string;
  orgName?: string;
}

export interface ErrorCount {
  ret_code: string;
  ret_msg: string;
  count: number;
  last_at: string;
}

interface StatsData {
  version: 1;
  /** `${time_region}|${org_code}|${online_or_offline}|${usecard_scene}` → count */
  counts: Record<string, number>;
}

export interface UsageStatsOptions {
  /** the JSON file, normally `<stateDir>/stats/usage.json` */
  file: string;
  site: SiteInfo;
  /** treatment step when a verification names none (config verify.treatmentCode) */
  defaultScene: string;
  retainDays?: number;
  logger?: Logger;
  clock?: () => Date;
  saveDelayMs?: number;
  /** never write the file (tools reading a running appliance's counters) */
  readOnly?: boolean;
}

/** a local day as `yyyyMMdd` */
export const YMD = /^\d{8}$/;

export function onlineOrOffline(result: Pick<VerifyResult, 'decided_by' | 'offline'>): OnlineOrOffline {
  return result.decided_by === 'offline-local' || result.offline ? 'offline' : 'online';
}

export class UsageStats {
  private saveTimer: NodeJS.Timeout | null = null;
  private saving: Promise<void> | null = null;
  private readonly errors = new Map<string, number[]>();
  private readonly clock: () => Date;

  private constructor(
    private readonly db: Low<StatsData>,
    private readonly opts: UsageStatsOptions,
  ) {
    this.clock = opts.clock ?? (() => new Date());
  }

  static async open(opts: UsageStatsOptions): Promise<UsageStats> {
    await makeDirDurably(path.dirname(opts.file));
    const db = new Low<StatsData>(new FsyncJSONFile<StatsData>(opts.file), { version: 1, counts: {} });
    try {
      await db.read();
    } catch (err) {
      opts.logger?.error('stats: counters file unreadable, starting from zero', { file: opts.file, err: err as Error });
      db.data = { version: 1, counts: {} };
    }
    const stats = new UsageStats(db, opts);
    stats.prune();
    return stats;
  }

  /** Count one successful verification. */
  recordVerification(
    result: Pick<VerifyResult, 'decided_by' | 'offline' | 'out_verify_time'>,
    ctx: { treatmentCode?: string; orgCode?: string; at?: Date } = {},
  ): void {
    const fromResult = result.out_verify_time?.slice(0, 8);
    const day = ctx.at ? localDay(ctx.at) : fromResult && YMD.test(fromResult) ? fromResult : localDay(this.clock());
    const key = [day, ctx.orgCode ?? this.opts.site.orgCode, onlineOrOffline(result), ctx.treatmentCode || this.opts.defaultScene].join('|');
    this.db.data.counts[key] = (this.db.data.counts[key] ?? 0) + 1;
    this.scheduleSave();
  }

  /** Count one failed verification or request by its return code (kept for the last 24 h, in memory). */
  recordError(retCode: string, at: Date = this.clock()): void {
    const list = this.errors.get(retCode) ?? [];
    list.push(at.getTime());
    if (list.length > 10_000) list.splice(0, list.length - 10_000);
    this.errors.set(retCode, list);
  }

  /** Errors by return code within the last `windowSeconds`, most frequent first. */
  recentErrors(windowSeconds = 3600): ErrorCount[] {
    const since = this.clock().getTime() - windowSeconds * 1000;
    const out: ErrorCount[] = [];
    for (const [code, times] of this.errors) {
      const kept = times.filter((t) => t >= this.clock().getTime() - 86_400_000);
      this.errors.set(code, kept);
      const inWindow = kept.filter((t) => t >= since);
      if (inWindow.length === 0) continue;
      out.push({
        ret_code: code,
        ret_msg: isReturnCode(code) ? RETURN_CODES[code] : 'unknown return code',
        count: inWindow.length,
        last_at: new Date(inWindow[inWindow.length - 1]!).toISOString(),
      });
    }
    return out.sort((a, b) => b.count - a.count || a.ret_code.localeCompare(b.ret_code));
  }

  /** `usecard_scene_list` rows for days from..to (inclusive, yyyyMMdd), sorted, one page. */
  usecardSceneList(q: { from?: string; to?: string; orgCode?: string; pageNo?: number; pageSize?: number } = {}): Page<'usecard_scene_list', UsecardSceneRow> {
    const rows: UsecardSceneRow[] = [];
    for (const [key, n] of Object.entries(this.db.data.counts)) {
      const [time_region, org_code, mode, usecard_scene] = key.split('|') as [string, string, OnlineOrOffline, string];
      if (q.from && time_region < q.from) continue;
      if (q.to && time_region > q.to) continue;
      if (q.orgCode && org_code !== q.orgCode) continue;
      rows.push({ time_region, org_code, online_or_offline: mode, usecard_scene, usecard_scene_num: n });
    }
    rows.sort((a, b) =>
      a.time_region !== b.time_region ? a.time_region.localeCompare(b.time_region)
      : a.org_code !== b.org_code ? a.org_code.localeCompare(b.org_code)
      : a.online_or_offline !== b.online_or_offline ? a.online_or_offline.localeCompare(b.online_or_offline)
      : a.usecard_scene.localeCompare(b.usecard_scene),
    );
    const pageSize = q.pageSize ?? 100;
    const pageNo = q.pageNo ?? 1;
    return { list: 'usecard_scene_list', page_no: pageNo, page_size: pageSize, total_count: rows.length, rows: rows.slice((pageNo - 1) * pageSize, pageNo * pageSize) };
  }

  /** Drop days older than retainDays. */
  prune(): void {
    const oldest = localDay(new Date(this.clock().getTime() - (this.opts.retainDays ?? 400) * 86_400_000));
    let dropped = 0;
    for (const key of Object.keys(this.db.data.counts)) {
      if (key.slice(0, 8) < oldest) {
        delete this.db.data.counts[key];
        dropped++;
      }
    }
    if (dropped) this.scheduleSave();
  }

  private scheduleSave(): void {
    if (this.saveTimer || this.opts.readOnly) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      void this.save();
    }, this.opts.saveDelayMs ?? 1000);
    this.saveTimer.unref();
  }

  private async save(): Promise<void> {
    if (this.opts.readOnly) return;
    while (this.saving) await this.saving;
    this.saving = this.db.write().catch((err) => this.opts.logger?.error('stats: counters not saved', { err: err as Error }));
    await this.saving;
    this.saving = null;
  }

  async close(): Promise<void> {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    await this.save();
  }
}

/** `read_term_list` rows from the scanner registry. */
export function readTermList(scanners: readonly ScannerInfo[], site: SiteInfo): ReadTermRow[] {
  return scanners.map((s) => ({
    org_code: site.orgCode,
    org_name: site.orgName ?? '',
    term_record: s.stmCode ?? '',
    term_serial: s.serialNumber ?? s.id,
    term_name: s.name ?? s.id,
    term_useway: s.station ?? '',
    term_unit: s.manufacturer ?? '',
    term_access_time: s.firstSeen ? localDay(new Date(s.firstSeen)) : '',
  }));
}
