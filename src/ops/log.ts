/**
 * Structured JSON logs, one line per event, to stdout (the journal under systemd).
 * Personal data is masked by construction: every field passes through maskDeep, so a caller cannot
 * log a clear name, ID number or phone even by mistake.
 */
import { maskDeep, maskText } from '../code/mask.ts';

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

export function createLogger(
  options: { level?: LogLevel; sink?: LogSink; bindings?: Record<string, unknown> } = {},
): Logger {
  const threshold = ORDER[options.level ?? (process.env.EHC_LOG_LEVEL as LogLevel | undefined) ?? 'info'] ?? ORDER.info;
  const sink: LogSink = options.sink ?? ((line) => process.stdout.write(line + '\n'));
  const bindings = options.bindings ?? {};
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < threshold) return;
    const record = maskDeep({ ...bindings, ...fields }) as Record<string, unknown>;
    sink(JSON.stringify({ time: new Date().toISOString(), level, msg: maskText(msg), ...record }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (more) => createLogger({ level: options.level, sink, bindings: { ...bindings, ...more } }),
  };
}

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ level: 'debug', sink: (l) => lines.push(l) }), { lines });
}
