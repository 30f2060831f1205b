/**
 * Dialects as data: the profiles shipped in `dialects/*.json`, each validated against
 * `dialects/dialect.schema.json`, and `upstream.dialect` — a profile's name or an inline object (which
 * may name a `base` profile and override knobs). Every failure is a DialectError naming the file or
 * key and what to fix; a non-SM algorithm is refused with the reason (密评 requires SM2/SM3/SM4).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import AjvModule from 'ajv';
import { NATIONAL_V31, resolveDialect, type Dialect, type DialectSpec } from './dialect.ts';

const Ajv = AjvModule as unknown as typeof AjvModule.default;

export const DIALECTS_DIR = fileURLToPath(new URL('../../dialects/', import.meta.url));
export const DEFAULT_DIALECT = 'national-v3.1';

export class DialectError extends Error {
  override readonly name = 'DialectError';
  constructor(
    readonly where: string,
    readonly why: string,
  ) {
    super(`${where}: ${why}`);
  }
}

let validator: ReturnType<InstanceType<typeof Ajv>['compile']> | undefined;
function validate(doc: unknown): ReturnType<InstanceType<typeof Ajv>['compile']> {
  if (!validator) {
    const schema = JSON.parse(readFileSync(path.join(DIALECTS_DIR, 'dialect.schema.json'), 'utf8')) as Record<string, unknown>;
    validator = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true }).compile(schema);
  }
  validator(doc);
  return validator;
}

const NON_SM = /^(?:AES|DES|3DES|TDES|RSA|MD5|SHA|SHA1|SHA-?\d+|HMAC.*|RC4|BLOWFISH|ECDSA)/i;
const ALGORITHM_KEYS = ['encType', 'digestType', 'cipher', 'digest_type', 'enc_type', 'algorithm', 'hash', 'digestAlgorithm', 'signType'];

/** Refuse AES/MD5/SHA-256 … with the reason, before the schema's generic "must be equal to constant". */
function refuseNonSm(doc: Record<string, unknown>, where: string): void {
  for (const k of ALGORITHM_KEYS) {
    const v = doc[k];
    if (typeof v === 'string' && NON_SM.test(v)) {
      throw new DialectError(`${where}: ${k}`, `${v} is not supported: 密评 (commercial cryptography assessment, GM/T 0054) requires SM2/SM3/SM4, so ehc-edge speaks SM4 ciphers and SM3 digests only, on purpose`);
    }
  }
}

/** Check one dialect document (a file's content or an inline object). */
export function checkSpec(doc: unknown, where: string): DialectSpec {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new DialectError(where, 'a dialect is a JSON object');
  refuseNonSm(doc as Record<string, unknown>, where);
  const v = validate(doc);
  if (v.errors?.length) {
    const e = v.errors[0]!;
    const key = [e.instancePath.replace(/^\//, '').replace(/\//g, '.'), (e.params as { additionalProperty?: string }).additionalProperty].filter(Boolean).join('.');
    const why = e.keyword === 'additionalProperties' ? 'unknown knob' : e.keyword === 'enum' ? `${e.message}: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` : (e.message ?? 'invalid');
    throw new DialectError(key ? `${where}: ${key}` : where, why);
  }
  return doc as DialectSpec;
}

let cache: Map<string, Dialect> | undefined;

/** All shipped profiles by name (national-v3.1 first), each resolved over the national reading. */
export function shippedDialects(dir = DIALECTS_DIR): Map<string, Dialect> {
  if (dir === DIALECTS_DIR && cache) return cache;
  const out = new Map<string, Dialect>();
  const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'dialect.schema.json').sort();
  for (const file of files) {
    const where = `dialects/${file}`;
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
    } catch (err) {
      throw new DialectError(where, `not JSON: ${(err as Error).message}`);
    }
    const spec = checkSpec(doc, where);
    const name = file.slice(0, -'.json'.length);
    if (spec.name !== name) throw new DialectError(`${where}: name`, `must be "${name}" (the file name)`);
    if (spec.base) throw new DialectError(`${where}: base`, 'shipped profiles spell out their knobs (base is for inline dialects)');
    out.set(name, resolveDialect(spec));
  }
  if (!out.has(DEFAULT_DIALECT)) out.set(DEFAULT_DIALECT, { ...NATIONAL_V31 } as Dialect);
  const sorted = new Map([[DEFAULT_DIALECT, out.get(DEFAULT_DIALECT)!], ...[...out].filter(([n]) => n !== DEFAULT_DIALECT)]);
  if (dir === DIALECTS_DIR) cache = sorted;
  return sorted;
}

/**
 * `upstream.dialect` → a resolved dialect: a shipped profile's name, or an inline object (knobs over
 * its `base` profile, national when none). `appKey` is the fixed key of `key: fixed` dialects.
 */
export function loadDialect(config: string | DialectSpec | undefined, opts: { appKey?: string; where?: string } = {}): Dialect {
  const where = opts.where ?? 'upstream.dialect';
  const profiles = shippedDialects();
  const byName = (name: string, at: string) => {
    const d = profiles.get(name);
    if (!d) throw new DialectError(at, `no dialect "${name}"; shipped: ${[...profiles.keys()].join(', ')}`);
    return d;
  };
  let d: Dialect;
  if (config === undefined) d = byName(DEFAULT_DIALECT, where);
  else if (typeof config === 'string') d = structuredClone(byName(config, where));
  else {
    const spec = checkSpec(config, where);
    d = resolveDialect(spec, spec.base ? byName(spec.base, `${where}.base`) : NATIONAL_V31);
  }
  if (opts.appKey !== undefined) d = { ...d, appKey: opts.appKey };
  if (d.key === 'fixed' && !(d.appKey && /^[0-9A-Fa-f]{32}$/.test(d.appKey))) {
    throw new DialectError(where, `dialect ${d.name} encrypts with a fixed key issued with the app: set upstream.appKey (32 hex digits)`);
  }
  return d;
}
