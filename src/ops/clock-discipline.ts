/**
 * Clock discipline: is the system clock right enough to decide dynamic codes locally?
 *
 * Two independent witnesses, compared with the system clock:
 * - the home card system: every answer's envelope carries its `timestamp`; the offset (home − system,
 *   less half the round trip is not known here, so answers are taken as they come) of the latest
 *   answer is kept;
 * - the last time the appliance knew (`<stateDir>/clock.json`, written durably every minute and at
 *   stop): a system clock earlier than that by more than the allowed skew went back.
 * Beyond `verify.clock.maxSkewSeconds` the clock is *suspect*: status degrades (`clock.ok: false`)
 * and local decisions on dynamic codes follow `verify.clock.policy`:
 * - `refuse` (default): the local decision is refused with 8008 (HTTP 503) — the desk falls back to the
 *   home card system or another check; nothing is accepted on a wrong clock;
 * - `accept-and-flag`: the code's expiry is checked against the corrected clock (system + the home
 *   system's offset, never earlier than the last known time) and the answer carries
 *   `clock_suspect: true`.
 * In both, `now()` is that corrected clock, so a code that expired by the true clock is never accepted
 * because the system clock is behind. chrony / systemd-timesyncd state is shown when available.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { replaceFileDurably } from '../platform/durable-write.ts';
import type { Logger } from '../platform/log.ts';
import { parseCst } from '../platform/time.ts';

export type ClockPolicy = 'refuse' | 'accept-and-flag';

export interface ClockDisciplineOptions {
  stateDir: string;
  maxSkewSeconds: number;
  policy: ClockPolicy;
  logger?: Logger;
  clock?: () => number;
  /** how often the last known time is written (default 60 s) */
  persistEveryMs?: number;
  /** reads the time-sync daemon's state; default: `chronyc tracking` or `timedatectl show` when present */
  timesync?: () => Promise<TimesyncState | undefined>;
}

export interface TimesyncState {
  source: 'chrony' | 'timesyncd';
  synchronized: boolean;
  detail?: string;
}

export interface ClockState {
  ok: boolean;
  policy: ClockPolicy;
  max_skew_s: number;
  system_time: string;
  /** home system − system clock, ms, from the latest answer (null before the first) */
  home_offset_ms: number | null;
  home_seen_at: string | null;
  /** the persisted last known time, and by how much the system clock is behind it (0 when not) */
  last_known: string | null;
  behind_last_known_ms: number;
  reason?: string;
  timesync?: TimesyncState;
}

/** `timestamp` of an answer envelope: ms since the epoch (13 digits) or yyyyMMddHHmmss CST. */
export function parseAnswerTimestamp(text: string | undefined): number | undefined {
  if (!text) return undefined;
  if (/^\d{13}$/.test(text)) return Number(text);
  return parseCst(text)?.getTime();
}

export class ClockDiscipline {
  readonly #o: ClockDisciplineOptions;
  readonly #clock: () => number;
  readonly #file: string;
  #lastKnown: number | null;
  #offset: number | null = null;
  #offsetAt: number | null = null;
  #timer?: NodeJS.Timeout;
  #timesync?: TimesyncState;
  #suspectNoted = false;

  private constructor(o: ClockDisciplineOptions, lastKnown: number | null) {
    this.#o = o;
    this.#clock = o.clock ?? Date.now;
    this.#file = path.join(o.stateDir, 'clock.json');
    this.#lastKnown = lastKnown;
  }

  static async open(o: ClockDisciplineOptions): Promise<ClockDiscipline> {
    let lastKnown: number | null = null;
    try {
      const doc = JSON.parse(readFileSync(path.join(o.stateDir, 'clock.json'), 'utf8')) as { lastKnownMs?: unknown };
      if (typeof doc.lastKnownMs === 'number' && Number.isFinite(doc.lastKnownMs)) lastKnown = doc.lastKnownMs;
    } catch {
      // first start, or unreadable: no witness from the past
    }
    const d = new ClockDiscipline(o, lastKnown);
    d.#check();
    await d.persist();
    const every = o.persistEveryMs ?? 60_000;
    d.#timer = setInterval(() => void d.persist().catch(() => {}), every);
    d.#timer.unref();
    void d.refreshTimesync();
    return d;
  }

  /** An answer of the home card system arrived with this envelope timestamp. */
  noteHomeTimestamp(timestamp: string | undefined): void {
    const home = parseAnswerTimestamp(timestamp);
    if (home === undefined) return;
    const now = this.#clock();
    this.#offset = home - now;
    this.#offsetAt = now;
    this.#check();
  }

  /** The best estimate of the true time: system + the home system's offset, never before the last known time. */
  now(): Date {
    const system = this.#clock();
    const corrected = this.#offset !== null && Math.abs(this.#offset) > this.#o.maxSkewSeconds * 1000 ? system + this.#offset : system;
    return new Date(Math.max(corrected, this.#lastKnown ?? -Infinity));
  }

  /** Why the clock is not to be trusted, or undefined when it is. */
  suspect(): string | undefined {
    const max = this.#o.maxSkewSeconds * 1000;
    const now = this.#clock();
    if (this.#offset !== null && Math.abs(this.#offset) > max) return `system clock differs from the home card system by ${Math.round(this.#offset / 1000)} s`;
    if (this.#lastKnown !== null && this.#lastKnown - now > max) return `system clock is ${Math.round((this.#lastKnown - now) / 1000)} s behind the last time the appliance knew`;
    return undefined;
  }

  get policy(): ClockPolicy {
    return this.#o.policy;
  }

  state(): ClockState {
    const now = this.#clock();
    const reason = this.suspect();
    return {
      // the time-sync daemon's view is shown, not judged: the two witnesses decide
      ok: reason === undefined,
      policy: this.#o.policy,
      max_skew_s: this.#o.maxSkewSeconds,
      system_time: new Date(now).toISOString(),
      home_offset_ms: this.#offset,
      home_seen_at: this.#offsetAt === null ? null : new Date(this.#offsetAt).toISOString(),
      last_known: this.#lastKnown === null ? null : new Date(this.#lastKnown).toISOString(),
      behind_last_known_ms: this.#lastKnown === null ? 0 : Math.max(0, this.#lastKnown - now),
      ...(reason ? { reason } : {}),
      ...(this.#timesync ? { timesync: this.#timesync } : {}),
    };
  }

  /** Write the last known time (the corrected clock, never going back) durably. */
  async persist(): Promise<void> {
    const t = this.now().getTime();
    if (this.#lastKnown !== null && t < this.#lastKnown) return;
    // a suspect clock that runs ahead of the home system must not push the witness into the future
    if (this.#offset !== null && this.#offset < -this.#o.maxSkewSeconds * 1000) return;
    this.#lastKnown = t;
    await replaceFileDurably(this.#file, JSON.stringify({ lastKnownMs: this.#lastKnown, at: new Date(this.#lastKnown).toISOString() }) + '\n');
  }

  async refreshTimesync(): Promise<void> {
    this.#timesync = await (this.#o.timesync ?? readTimesync)().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.persist().catch(() => {});
  }

  #check(): void {
    const reason = this.suspect();
    if (reason && !this.#suspectNoted) {
      this.#suspectNoted = true;
      this.#o.logger?.error('system clock is suspect: local decisions on dynamic codes follow verify.clock.policy', { reason, policy: this.#o.policy });
    } else if (!reason && this.#suspectNoted) {
      this.#suspectNoted = false;
      this.#o.logger?.info('system clock agrees with its witnesses again');
    }
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { timeout: 2000 }, (err, out) => (err ? reject(err) : resolve(out))));
}

/** chrony (`chronyc tracking`) or systemd-timesyncd (`timedatectl show`), whichever answers. */
export async function readTimesync(): Promise<TimesyncState | undefined> {
  try {
    const out = await run('chronyc', ['-n', 'tracking']);
    const leap = /Leap status\s*:\s*(.+)/.exec(out)?.[1]?.trim();
    const offset = /System time\s*:\s*(.+)/.exec(out)?.[1]?.trim();
    return { source: 'chrony', synchronized: leap === 'Normal', detail: offset };
  } catch {
    // no chrony
  }
  try {
    const out = await run('timedatectl', ['show', '-p', 'NTPSynchronized', '-p', 'NTP']);
    const synced = /NTPSynchronized=yes/.test(out);
    return { source: 'timesyncd', synchronized: synced, detail: out.trim().replace(/\n/g, ' ') };
  } catch {
    return undefined;
  }
}
