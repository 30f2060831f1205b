/**
 * Loads and validates the appliance configuration. Source: `--config PATH`, else `EHC_EDGE_CONFIG`,
 * else ./appliance.config.json. The first wrong key is reported as `file: key: why`; main exits 2.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import AjvModule from 'ajv';
import { DEFAULT_KEY_INDEXES, configSchema } from './schema.ts';
import type { ApplianceConfig } from './types.ts';
import { DEFAULT_DIALECT, DialectError, loadDialect } from '../protocol/dialect-profiles.ts';

const Ajv = AjvModule as unknown as typeof AjvModule.default;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly key: string,
    readonly why: string,
  ) {
    super(`${file}: ${key || '(top level)'}: ${why}`);
  }
}

const ajv = new Ajv({ allErrors: false, strict: true, strictTuples: false });
const validate = ajv.compile(configSchema);

export function configPathFrom(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): string {
  const i = argv.indexOf('--config');
  const fromArgs = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--config='))?.slice('--config='.length);
  return path.resolve(cwd, fromArgs ?? env.EHC_EDGE_CONFIG ?? 'appliance.config.json');
}

function keyPath(instancePath: string, params: Record<string, unknown>): string {
  const base = instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
  const extra = (params.additionalProperty ?? params.missingProperty) as string | undefined;
  return extra ? (base ? `${base}.${extra}` : extra) : base;
}

/** The loaded config is read-only: a component that needs another value derives its own copy. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Validate a parsed document and fill in defaults (frozen). Throws ConfigError. */
export function parseConfig(raw: unknown, file: string): ApplianceConfig {
  if (!validate(raw)) {
    const first = validate.errors?.[0];
    const key = first ? keyPath(first.instancePath, first.params as Record<string, unknown>) : '';
    const why = first?.keyword === 'additionalProperties' ? 'unknown key' : first?.message ?? 'invalid';
    throw new ConfigError(file, key, why);
  }
  const doc = raw as Record<string, any>;
  const dir = path.dirname(file);
  const resolve = (p: string) => path.resolve(dir, p);
  const stateDir = resolve(doc.stateDir);
  const upstream = doc.upstream;
  const url = new URL(upstream.url);
  if (url.protocol === 'http:') {
    const loopback = ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(url.hostname) || url.hostname.startsWith('127.');
    if (!upstream.insecure) throw new ConfigError(file, 'upstream.url', 'plain http needs upstream.insecure: true');
    if (!loopback) throw new ConfigError(file, 'upstream.url', 'plain http is only allowed to a loopback host');
  }
  for (const k of ['ca', 'cert', 'key'] as const) if (upstream.tls?.[k]) upstream.tls[k] = resolve(upstream.tls[k]);
  try {
    loadDialect(upstream.dialect, { appKey: upstream.appKey });
  } catch (err) {
    if (err instanceof DialectError) throw new ConfigError(file, err.where, err.why);
    throw err;
  }
  if (doc.card.driver === 'sdf' && !doc.card.sdf) throw new ConfigError(file, 'card.sdf', 'required when card.driver is sdf');
  const his = doc.his;
  if (his.tls) for (const k of ['cert', 'key', 'ca'] as const) if (his.tls[k]) his.tls[k] = resolve(his.tls[k]);
  for (const list of ['apiKeys', 'viewerKeys'] as const) {
    for (const [i, k] of ((his[list] ?? []) as string[]).entries()) {
      if (k.startsWith('sm3:') && !/^sm3:[0-9a-fA-F]{64}$/.test(k)) throw new ConfigError(file, `his.${list}.${i}`, 'sm3: must be followed by 64 hex digits');
    }
  }
  return deepFreeze({
    configPath: file,
    configDir: dir,
    stateDir,
    site: doc.site,
    his: { bodyLimitBytes: 16384, viewerKeys: [], ...his,
      connections: { max: 1024, perAddress: 256, reserve: 32, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, idleTimeoutMs: 120_000, ...(his.connections ?? {}) },
      authThrottle: { maxFailures: 10, windowSeconds: 60, globalMaxFailures: 200, ...(his.authThrottle ?? {}) },
      websocket: his.websocket ?? false,
      cors: { origins: [], maxAgeSeconds: 600, ...(his.cors ?? {}) },
      streamTickets: { ttlSeconds: 30, maxOutstanding: 1000, ...(his.streamTickets ?? {}) } },
    upstream: {
      connectTimeoutMs: 3000,
      healthIntervalMs: 5000,
      breakerFailures: 3,
      breakerRetryMs: 1000,
      probeTimeoutMs: 1000,
      certWarnDays: 30,
      insecure: false,
      ...upstream,
      crossDomainUrl: upstream.crossDomainUrl ?? upstream.url,
      dialect: upstream.dialect ?? DEFAULT_DIALECT,
      province: { usecarddate: false, usecarddateHour: 1, registerTerminals: false, ...(upstream.province ?? {}) },
    },
    card: {
      ...doc.card,
      keyFile: doc.card.keyFile ? resolve(doc.card.keyFile) : path.join(stateDir, 'soft-card.keys.json'),
      keys: { ...DEFAULT_KEY_INDEXES, ...(doc.card.keys ?? {}) },
      sdf: doc.card.sdf ? { sessions: 8, ...doc.card.sdf, library: resolve(doc.card.sdf.library) } : undefined,
    },
    verify: {
      clockSkewSeconds: 30,
      treatmentCode: '010101',
      operatorId: 'ehc-edge',
      operatorName: 'ehc-edge',
      ...doc.verify,
      clock: { maxSkewSeconds: 120, policy: 'refuse', ...(doc.verify.clock ?? {}) },
    },
    simulator: { enabled: false, listen: '127.0.0.1:18443', ...(doc.simulator ?? {}) },
    scannerAutoDetect: doc.scannerAutoDetect ?? true,
    scanners: doc.scanners ?? [],
    scan: { dedupeWindowMs: 1500, streamBuffer: 1000, maxSubscribers: 256, subscriberBuffer: 256, ...(doc.scan ?? {}) },
    outbox: { maxRecords: 1_000_000, maxBytes: 1_073_741_824, maxAgeHours: 720, whenFull: 'reject-new', replayBatch: 64, replayYieldAbove: 0.5, replayMaxYieldMs: 5000, replayWindow: 16, replayMaxPerSecond: 100, replayStartJitterMs: 10000, replayBackoffBaseMs: 500, replayBackoffMaxMs: 60000, ...(doc.outbox ?? {}) },
    audit: { retainDays: 400, maxBytes: 2_147_483_648, onFailure: 'refuse', ...(doc.audit ?? {}) },
    admin: { apiKeys: [], maxFailedAttempts: 5, lockoutSeconds: 900, ...(doc.admin ?? {}) },
    log: { level: 'info', pii: 'mask', ...(doc.log ?? {}) },
    systemd: { watchdog: true, ...(doc.systemd ?? {}) },
    webhooks: {
      maxQueued: 100_000,
      retryMaxMs: 60_000,
      ...(doc.webhooks ?? {}),
      targets: ((doc.webhooks?.targets ?? []) as Array<Record<string, unknown>>).map((t) => ({ timeoutMs: 5000, ...t })),
    },
  });
}

export function loadConfig(file: string): ApplianceConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, '', `not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, file);
}
