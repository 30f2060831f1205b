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
