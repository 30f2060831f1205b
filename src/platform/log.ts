/**
 * Structured JSON logs, one line per event, to stdout (the journal under systemd).
 * Personal data is masked by construction: every field passes through maskDeep, so a caller cannot
 * log a clear name, ID number or phone even by mistake. Besides the field names mask.ts knows, common
 * spellings (`IdNo`, `id_card`, `cert_no`, `mobile`, `patient_name`, `tel` …, any case, with or without
 * `_`/`-`) are masked too, and 18-digit ID numbers and mobile numbers inside any text are scrubbed.
 * A person's name inside free text cannot be recognised: messages are constant strings and data goes
 * in fields (test/no-pii-in-logs.test.ts found exactly that case when it was broken).
 *
 * PII policy: `mask` (default) writes the masked line; `refuse` (option `pii`, or EHC_LOG_PII=refuse)
 * throws PiiInLogError naming the field — never its value — when a clear identity reaches the logger,
 * so a test or a development run finds the call site that should have masked it.
 */
import { cstIso } from './time.ts';
import { PII_FIELDS, isSerialField, maskDeep, maskIdNo, maskName, maskPhone, maskText } from './mask.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

export type LogSink = (line: string) => void;
export type PiiPolicy = 'mask' | 'refuse';

export class PiiInLogError extends Error {
  override readonly name = 'PiiInLogError';
  constructor(readonly field: string) {
    super(`refused to log a clear identity in field '${field}' (mask it with src/platform/mask.ts)`);
  }
}

/** Other spellings of identity fields, matched case-insensitively without `_` and `-`. */
const ALIASES: Record<string, (v: string) => string> = {
  idno: maskIdNo,
  idnumber: maskIdNo,
  idcard: maskIdNo,
  idcardno: maskIdNo,
  certno: maskIdNo,
  certificateno: maskIdNo,
  zjhm: maskIdNo,
  username: maskName,
  patientname: maskName,
  realname: maskName,
  fullname: maskName,
  xm: maskName,
  mobile: maskPhone,
  mobilephone: maskPhone,
  phonenumber: maskPhone,
  tel: maskPhone,
  telephone: maskPhone,
  sjhm: maskPhone,
};

/** Field names mask.ts masks as a person's name, ID number or phone (its maskers are idempotent on masked values). */
const IDENTITY_KEYS: ReadonlySet<string> = new Set(
  ['id_no', 'idNo', 'id0000', 'user_name', 'userName', 'name', 'operator_name', 'operatorName', 'mobile_phone', 'telephone', 'unit_phone', 'phone'].filter((k) => PII_FIELDS.has(k)),
);

const normal = (key: string) => key.toLowerCase().replace(/[_-]/g, '');

/** Mask alias-named identity fields (the ones mask.ts does not know by exact name), deep. */
function maskAliases(value: unknown, depth = 0): unknown {
  if (depth > 8 || !value || typeof value !== 'object' || value instanceof Error) return value;
  if (Array.isArray(value)) return value.map((v) => maskAliases(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const alias = PII_FIELDS.has(k) ? undefined : ALIASES[normal(k)];
    out[k] = alias && typeof v === 'string' ? alias(v) : maskAliases(v, depth + 1);
  }
  return out;
}

/** Everything a log line or an audit detail holds, masked. */
export function maskForLog(value: unknown): unknown {
  return maskDeep(maskAliases(value));
}

/** The first field holding a clear identity (a value its masker would change), as a dotted path. */
export function findClearPii(value: unknown, at = '', depth = 0): string | undefined {
  if (depth > 8) return undefined;
  if (typeof value === 'string') return maskText(value) !== value ? at || '(message)' : undefined;
  if (!value || typeof value !== 'object') return undefined;
  if (value instanceof Error) return findClearPii(value.message, at ? `${at}.message` : 'message', depth + 1);
  for (const [k, v] of Object.entries(value)) {
    const path = at ? `${at}.${k}` : k;
    if (typeof v === 'string' && isSerialField(k, v)) continue; // kept by maskDeep, so not clear PII either
    if (typeof v === 'string' && (IDENTITY_KEYS.has(k) || ALIASES[normal(k)])) {
      const masked = (maskForLog({ [k]: v }) as Record<string, unknown>)[k];
      if (masked !== v) return path;
      continue;
    }
    const found = findClearPii(v, path, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** a process-wide level set by a config reload (SIGHUP, src/main.ts); wins over each logger's own (undefined: none) */
let reloadedThreshold: number | undefined;
export function setLogLevel(level: LogLevel | undefined): void {
  reloadedThreshold = level === undefined ? undefined : ORDER[level];
}

export function createLogger(
  options: { level?: LogLevel; sink?: LogSink; bindings?: Record<string, unknown>; pii?: PiiPolicy } = {},
): Logger {
  const threshold = ORDER[options.level ?? (process.env.EHC_LOG_LEVEL as LogLevel | undefined) ?? 'info'] ?? ORDER.info;
  const sink: LogSink = options.sink ?? ((line) => process.stdout.write(line + '\n'));
  const bindings = options.bindings ?? {};
  const pii: PiiPolicy = options.pii ?? (process.env.EHC_LOG_PII === 'refuse' ? 'refuse' : 'mask');
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < (reloadedThreshold ?? threshold)) return;
    const all = { ...bindings, ...fields };
    if (pii === 'refuse') {
      const field = findClearPii(msg, 'msg') ?? findClearPii(all);
      if (field) throw new PiiInLogError(field);
    }
    const record = maskForLog(all) as Record<string, unknown>;
    const now = new Date();
    // `time` for machines (UTC), `cst` for people: the same instant in China Standard Time
    sink(JSON.stringify({ time: now.toISOString(), cst: cstIso(now), level, msg: maskText(msg), ...record }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (more) => createLogger({ level: options.level, sink, bindings: { ...bindings, ...more }, pii }),
  };
}

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(options: { pii?: PiiPolicy } = {}): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ level: 'debug', sink: (l) => lines.push(l), pii: options.pii }), { lines });
}
