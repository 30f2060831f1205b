/**
 * A small persisted time series of the appliance, one point per minute, kept `retainDays` (default 8,
 * so a full week is always there) in one file per China day under `<stateDir>/history/`
 * (`yyyyMMdd.jsonl`, CST day boundaries like audit and statistics). Disk is bounded by construction:
 * at most 1 440 points and `maxEventsPerDay` events a day (~300 KB), files older than retainDays removed.
 * Each minute the day's file is replaced through the one durable-write helper; on stop the partial
 * minute is written too, so a restart loses nothing but the seconds after the last write.
 *
 * A point: verifications ok/rejected, by route and by return code, latency p50/p99 (ms) inside the
 * appliance, outbox depth and records drained in the minute, upstream reachability and probe latency.
 * Events: outage started/ended, scanner unplugged/back, appliance started — the page's timeline.
 * Nothing personal is stored: counts, codes, scanner ids and names only.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { replaceFileDurablySync } from '../platform/durable-write.ts';
import type { Logger } from '../platform/log.ts';
import { cstDay, cstDayStart } from '../platform/time.ts';
import type { VerifyObserver } from '../verify/verifier.ts';

export interface HistoryPoint {
  /** minute start, unix seconds */
  t: number;
  ok: number;
  rejected: number;
  byRoute: Record<string, number>;
  byCode: Record<string, number>;
  p50: number | null;
  p99: number | null;
  outboxDepth: number | null;
  drained: number;
  upstreamUp: number | null;
  upstreamMs: number | null;
}

export interface HistoryEvent {
  at: string;
  kind: 'appliance.started' | 'appliance.stopped' | 'upstream.down' | 'upstream.up' | 'scanner.unplugged' | 'scanner.back' | 'card.down' | 'card.up';
  id?: string;
  text: string;
  text_zh: string;
}

/** What the history samples every few seconds (cheap: cached probe results and counters). */
export interface HistorySample {
  upstreamUp: boolean;
  upstreamMs?: number;
  cardUp: boolean;
  outboxDepth: number;
  /** records delivered since start (a counter) */
  delivered: number;
  scanners: Array<{ id: string; name?: string; up: boolean; configured?: boolean }>;
}

export interface HistoryOptions {
  dir: string;
  sample: () => Promise<HistorySample>;
  retainDays?: number;
  sampleMs?: number;
  maxEventsPerDay?: number;
  clock?: () => number;
  log?: Logger;
}

/** The series as the page and the API serve it: one array per field, null where there is no point. */
export interface HistorySeries {
  stepSeconds: 60;
  from: string;
  to: string;
  t: number[];
  verified: Array<number | null>;
  rejected: Array<number | null>;
  p50: Array<number | null>;
  p99: Array<number | null>;
  outboxDepth: Array<number | null>;
  drained: Array<number | null>;
  upstreamUp: Array<number | null>;
  upstreamMs: Array<number | null>;
  byRoute: Record<string, Array<number | null>>;
  byCode: Record<string, Array<number | null>>;
  events: HistoryEvent[];
}

interface Bucket {
  t: number;
  ok: number;
  rejected: number;
  byRoute: Record<string, number>;
  byCode: Record<string, number>;
  latencies: number[];
  drained: number;
  upstreamUp: number | null;
  upstreamMs: number | null;
  outboxDepth: number | null;
}

const MAX_LATENCY_SAMPLES = 5000;

function quantile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export class History {
  readonly #o: Required<Omit<HistoryOptions, 'log'>> & { log?: Logger };
  /** points and events by CST day (yyyyMMdd) */
  readonly #days = new Map<string, { points: HistoryPoint[]; events: HistoryEvent[] }>();
  #bucket: Bucket;
  #timer: NodeJS.Timeout | undefined;
  #last: HistorySample | undefined;
  #lastDelivered: number | undefined;
  #writeFailures = 0;

  private constructor(o: HistoryOptions) {
    this.#o = { retainDays: 8, sampleMs: 5000, maxEventsPerDay: 2000, clock: Date.now, ...o };
    this.#bucket = this.#newBucket(this.#minute());
  }

  /** Reads the kept days, records the start, begins sampling. */
  static open(o: HistoryOptions): History {
    const h = new History(o);
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    h.#load();
    h.#resume();
    h.#event('appliance.started', undefined, 'appliance started', '设备启动');
    h.#prune();
    h.#timer = setInterval(() => void h.tick(), h.#o.sampleMs);
    h.#timer.unref();
    return h;
  }

  get writeFailures(): number {
    return this.#writeFailures;
  }

  #minute(): number {
    return Math.floor(this.#o.clock() / 60_000) * 60;
  }

  #newBucket(t: number): Bucket {
    return { t, ok: 0, rejected: 0, byRoute: {}, byCode: {}, latencies: [], drained: 0, upstreamUp: null, upstreamMs: null, outboxDepth: null };
  }

  #day(key: string) {
    let d = this.#days.get(key);
    if (!d) this.#days.set(key, (d = { points: [], events: [] }));
    return d;
  }

  #load(): void {
    for (const name of readdirSync(this.#o.dir)) {
      const m = /^(\d{8})\.jsonl$/.exec(name);
      if (!m) continue;
      const day = this.#day(m[1]!);
      for (const line of readFileSync(path.join(this.#o.dir, name), 'utf8').split('\n')) {
        if (!line) continue;
        try {
          const rec = JSON.parse(line) as { p?: HistoryPoint; e?: HistoryEvent };
          if (rec.p) day.points.push(rec.p);
          if (rec.e) day.events.push(rec.e);
        } catch {
          // a torn last line (power cut before the rename cannot happen; a hand edit can): skip it
        }
      }
    }
  }

  /** A restart within the minute of the last write continues that minute's point instead of overwriting it. */
  #resume(): void {
    const b = this.#bucket;
    const p = this.#days.get(cstDay(new Date(b.t * 1000)))?.points.find((x) => x.t === b.t);
    if (!p) return;
    b.ok = p.ok;
    b.rejected = p.rejected;
    b.byRoute = { ...p.byRoute };
    b.byCode = { ...p.byCode };
    b.drained = p.drained;
    b.upstreamUp = p.upstreamUp;
    b.upstreamMs = p.upstreamMs;
    b.outboxDepth = p.outboxDepth;
    // the exact latencies are gone; the stored quantiles stand in for them
    for (const q of [p.p50, p.p99]) if (q !== null) b.latencies.push(q);
  }

  /** Removes days older than retainDays, from memory and disk. */
  #prune(): void {
    const oldest = cstDay(new Date(cstDayStart(new Date(this.#o.clock())).getTime() - (this.#o.retainDays - 1) * 86_400_000));
    for (const key of [...this.#days.keys()]) {
      if (key >= oldest) continue;
      this.#days.delete(key);
      rmSync(path.join(this.#o.dir, `${key}.jsonl`), { force: true });
    }
  }

  #event(kind: HistoryEvent['kind'], id: string | undefined, text: string, zh: string): void {
    const now = new Date(this.#o.clock());
    const day = this.#day(cstDay(now));
    if (day.events.length >= this.#o.maxEventsPerDay) return;
    day.events.push({ at: now.toISOString(), kind, ...(id ? { id } : {}), text, text_zh: zh });
    this.#write(cstDay(now));
  }

  #write(key: string): void {
    const day = this.#days.get(key);
    if (!day) return;
    const lines = [...day.points.map((p) => JSON.stringify({ p })), ...day.events.map((e) => JSON.stringify({ e }))];
    try {
      replaceFileDurablySync(path.join(this.#o.dir, `${key}.jsonl`), lines.join('\n') + '\n', { mode: 0o600 });
    } catch (err) {
      this.#writeFailures++;
      this.#o.log?.warn('history not written', { err });
    }
  }

  /** Closes the current minute's point into its day (and file) when the minute has passed, or `force`. */
  #roll(force = false): void {
    const now = this.#minute();
    if (!force && now === this.#bucket.t) return;
    const b = this.#bucket;
    const sorted = [...b.latencies].sort((x, y) => x - y);
    const point: HistoryPoint = {
      t: b.t,
      ok: b.ok,
      rejected: b.rejected,
      byRoute: b.byRoute,
      byCode: b.byCode,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      outboxDepth: b.outboxDepth,
      drained: b.drained,
      upstreamUp: b.upstreamUp,
      upstreamMs: b.upstreamMs,
    };
    const key = cstDay(new Date(b.t * 1000));
    const day = this.#day(key);
    const same = day.points.findIndex((p) => p.t === point.t);
    if (same >= 0) day.points[same] = point; // a forced write of a minute that then continued
    else day.points.push(point);
    this.#write(key);
    if (now !== b.t) {
      this.#bucket = this.#newBucket(now);
      this.#prune();
    }
  }

  /** One sample: the minute's gauges, transitions as events; rolls the minute over. */
  async tick(): Promise<void> {
    let s: HistorySample;
    try {
      s = await this.#o.sample();
    } catch {
      return;
    }
    this.#roll();
    const b = this.#bucket;
    b.outboxDepth = s.outboxDepth;
    // a minute with any failed probe counts as down
    if (b.upstreamUp === null) b.upstreamUp = s.upstreamUp ? 1 : 0;
    else if (!s.upstreamUp) b.upstreamUp = 0;
    if (s.upstreamUp && s.upstreamMs !== undefined) b.upstreamMs = Math.max(b.upstreamMs ?? 0, s.upstreamMs);
    if (this.#lastDelivered !== undefined && s.delivered >= this.#lastDelivered) b.drained += s.delivered - this.#lastDelivered;
    this.#lastDelivered = s.delivered;
    const prev = this.#last;
    if (prev) {
      if (prev.upstreamUp && !s.upstreamUp) this.#event('upstream.down', undefined, 'home card system unreachable (outage started)', '发卡方系统不可达（中断开始）');
      if (!prev.upstreamUp && s.upstreamUp) this.#event('upstream.up', undefined, 'home card system reachable again (outage ended)', '发卡方系统恢复（中断结束）');
      if (prev.cardUp && !s.cardUp) this.#event('card.down', undefined, 'crypto card down', '密码卡不可用');
      if (!prev.cardUp && s.cardUp) this.#event('card.up', undefined, 'crypto card back', '密码卡恢复');
      const before = new Map(prev.scanners.map((x) => [x.id, x]));
      for (const x of s.scanners) {
        const was = before.get(x.id);
        const label = x.name ? `${x.name} (${x.id})` : x.id;
        if (was?.up && !x.up) this.#event('scanner.unplugged', x.id, `scanner ${label} unplugged`, `扫码器 ${label} 已拔出`);
        if (was && !was.up && x.up) this.#event('scanner.back', x.id, `scanner ${label} back`, `扫码器 ${label} 已恢复`);
        if (!was && x.up && prev) this.#event('scanner.back', x.id, `scanner ${label} plugged in`, `扫码器 ${label} 已接入`);
      }
    }
    this.#last = s;
  }

  /** The observer that counts verifications into the current minute. */
  observer(): VerifyObserver {
    const count = (route: string, code: string, ms: number, ok: boolean) => {
      this.#roll();
      const b = this.#bucket;
      if (ok) b.ok++;
      else b.rejected++;
      b.byRoute[route] = (b.byRoute[route] ?? 0) + 1;
      b.byCode[code] = (b.byCode[code] ?? 0) + 1;
      if (b.latencies.length < MAX_LATENCY_SAMPLES) b.latencies.push(ms);
      else b.latencies[Math.floor(Math.random() * MAX_LATENCY_SAMPLES)] = ms;
    };
    return {
      verified: (r, _req, ms) => count(r.decided_by, r.ret_code, ms, true),
      rejected: (e, _req, ms) => count('rejected', e.code, ms, false),
    };
  }

  /** The last `hours` as series, the current (partial) minute included. */
  series(hours: number): HistorySeries {
    const nowMin = this.#minute();
    const from = nowMin - Math.max(1, Math.min(hours, this.#o.retainDays * 24)) * 3600 + 60;
    const byT = new Map<number, HistoryPoint>();
    const events: HistoryEvent[] = [];
    for (const d of this.#days.values()) {
      for (const p of d.points) if (p.t >= from) byT.set(p.t, p);
      for (const e of d.events) if (Date.parse(e.at) >= from * 1000) events.push(e);
    }
    const b = this.#bucket;
    const sorted = [...b.latencies].sort((x, y) => x - y);
    byT.set(b.t, { t: b.t, ok: b.ok, rejected: b.rejected, byRoute: b.byRoute, byCode: b.byCode, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), outboxDepth: b.outboxDepth, drained: b.drained, upstreamUp: b.upstreamUp, upstreamMs: b.upstreamMs });
    const first = Math.min(...[...byT.keys()].filter((t) => t >= from), nowMin);
    const out: HistorySeries = { stepSeconds: 60, from: new Date(first * 1000).toISOString(), to: new Date(nowMin * 1000).toISOString(), t: [], verified: [], rejected: [], p50: [], p99: [], outboxDepth: [], drained: [], upstreamUp: [], upstreamMs: [], byRoute: {}, byCode: {}, events: events.sort((x, y) => x.at.localeCompare(y.at)) };
    const routes = new Set<string>();
    const codes = new Set<string>();
    for (const p of byT.values()) {
      Object.keys(p.byRoute).forEach((r) => routes.add(r));
      Object.keys(p.byCode).forEach((c) => codes.add(c));
    }
    for (const r of routes) out.byRoute[r] = [];
    for (const c of codes) out.byCode[c] = [];
    for (let t = first; t <= nowMin; t += 60) {
      const p = byT.get(t);
      out.t.push(t);
      out.verified.push(p ? p.ok : null);
      out.rejected.push(p ? p.rejected : null);
      out.p50.push(p?.p50 ?? null);
      out.p99.push(p?.p99 ?? null);
      out.outboxDepth.push(p?.outboxDepth ?? null);
      out.drained.push(p ? p.drained : null);
      out.upstreamUp.push(p?.upstreamUp ?? null);
      out.upstreamMs.push(p?.upstreamUp === 0 ? null : (p?.upstreamMs ?? null));
      for (const r of routes) out.byRoute[r]!.push(p ? (p.byRoute[r] ?? 0) : null);
      for (const c of codes) out.byCode[c]!.push(p ? (p.byCode[c] ?? 0) : null);
    }
    return out;
  }

  /** Writes the partial minute and a stop event; stops sampling. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.tick().catch(() => {});
    this.#event('appliance.stopped', undefined, 'appliance stopped', '设备停止');
    this.#roll(true);
  }
}
