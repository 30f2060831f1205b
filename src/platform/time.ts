/**
 * China Standard Time (UTC+8, no daylight saving), the time of every field the national protocol
 * carries and of every time shown to people: `yyyyMMddHHmmss` both ways.
 */
const CST_OFFSET_MS = 8 * 3600 * 1000;

/** `yyyyMMddHHmmss` in China Standard Time. */
export function formatCst(date: Date): string {
  const t = new Date(date.getTime() + CST_OFFSET_MS);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(t.getUTCFullYear(), 4)}${p(t.getUTCMonth() + 1)}${p(t.getUTCDate())}${p(t.getUTCHours())}${p(t.getUTCMinutes())}${p(t.getUTCSeconds())}`;
}

/** Parses `yyyyMMddHHmmss` (CST); null when it is not a real calendar time. */
export function parseCst(text: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const utc = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(utc);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) return null;
  return new Date(utc - CST_OFFSET_MS);
}

// --- for people and day boundaries: machine fields stay ISO-8601 UTC (`…Z`); anything a person reads
// is CST and says so (`+08:00` or `CST`); days (audit files, statistics, history) are China days.

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function parts(date: Date) {
  const t = new Date(date.getTime() + CST_OFFSET_MS);
  return { y: t.getUTCFullYear(), mo: t.getUTCMonth() + 1, d: t.getUTCDate(), h: t.getUTCHours(), mi: t.getUTCMinutes(), s: t.getUTCSeconds(), ms: t.getUTCMilliseconds() };
}

/** `10:42` on the same China day as `now`, else `12-01 10:42` — short form for status lines */
export function cstShort(date: Date, now: Date = new Date()): string {
  const p = parts(date);
  const same = cstDay(date) === cstDay(now);
  return `${same ? '' : `${pad(p.mo)}-${pad(p.d)} `}${pad(p.h)}:${pad(p.mi)}`;
}

/** The China day of an instant, `yyyyMMdd` */
export function cstDay(date: Date): string {
  const p = parts(date);
  return `${p.y}${pad(p.mo)}${pad(p.d)}`;
}

/** Start of the China day containing `date`, as an instant */
export function cstDayStart(date: Date): Date {
  const t = date.getTime() + CST_OFFSET_MS;
  return new Date(t - (t % 86_400_000) - CST_OFFSET_MS);
}

/** `2026-12-02T10:42:05.123+08:00`: the human time field of log lines (the same instant as `time`, read in CST) */
export function cstIso(date: Date): string {
  const p = parts(date);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}.${pad(p.ms, 3)}+08:00`;
}

/** `2026-12-02 10:42:05 CST` — for people (CLI tables, the page) */
export function cstDateTime(date: Date): string {
  const p = parts(date);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}:${pad(p.s)} CST`;
}

/**
 * A clock: ms since the epoch. Every day boundary (audit day files, usage statistics, history) is the
 * CST day of an instant read from an injected clock (default `Date.now`), so a test can stand at
 * 23:59:59 CST and one second later.
 */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
