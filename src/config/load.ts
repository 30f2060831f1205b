/**
 * Loads and validates the appliance configuration. Source: `--config PATH`, else `EHC_EDGE_CONFIG`,
 * else ./appliance.config.json. The first wrong key is reported as `file: key: why`; main exits 2.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import AjvModule from 'ajv';
import { configSchema, type ApplianceConfig } from './schema.ts';
import { DialectError, loadDialect } from '../protocol/dialect-profiles.ts';

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

const ajv = new Ajv({ allErrors: false, strict: true, strictTuples: false, useDefaults: true });
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

/** Validate a parsed document, filling in the schema's defaults (in place), and freeze it. Throws ConfigError. */
export function parseConfig(input: unknown, file: string): ApplianceConfig {
  const raw = structuredClone(input); // the validator writes the defaults in: not into the caller's object
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
  // Defaults were filled in by the validator (src/config/schema.ts); what is left is derived from other keys.
  upstream.crossDomainUrl ??= upstream.url;
  const card = doc.card;
  card.keyFile = card.keyFile ? resolve(card.keyFile) : path.join(stateDir, 'soft-card.keys.json');
  if (card.sdf) card.sdf.library = resolve(card.sdf.library);
  const { $schema: _schemaRef, ...settings } = doc;
  return deepFreeze({ ...settings, configPath: file, configDir: dir, stateDir } as ApplianceConfig);
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
