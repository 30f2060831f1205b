/**
 * China Standard Time (Asia/Shanghai, UTC+8, no daylight saving): the one zone for times shown to
 * people (status page, CLI, human fields of log lines) and for day boundaries (audit day files, usage
 * statistics, history days). Machine fields stay ISO-8601 UTC (`…Z`); anything a person reads is CST
 * and says so (`+08:00` or `CST`).
 */
const CST_OFFSET_MS = 8 * 3600 * 1000;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function parts(date: Date) {
  const t = new Date(date.getTime() + CST_OFFSET_MS);
  return { y: t.getUTCFullYear(), mo: t.getUTCMonth() + 1, d: t.getUTCDate(), h: t.getUTCHours(), mi: t.getUTCMinutes(), s: t.getUTCSeconds(), ms: t.getUTCMilliseconds() };
}

/** `2026-12-02T10:42:05.123+08:00` */
export function cstIso(date: Date): string {
  const p = parts(date);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}.${pad(p.ms, 3)}+08:00`;
}

/** `2026-12-02 10:42:05 CST` — for people */
export function cstDateTime(date: Date): string {
  const p = parts(date);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}:${pad(p.s)} CST`;
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
