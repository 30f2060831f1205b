/**
 * The dialect finder: given a sample sealed request (from a card system's documentation or a log),
 * the app secret, and optionally the answer to it, try every shipped profile and name the ones that
 * reproduce it — the digest byte for byte, biz_content decrypting to a JSON object, the body form,
 * field names, timestamp and version forms, and the answer's shape. When none does, say so, name the
 * nearest miss and what it gets wrong, and search the byte-level knobs for a combination that does
 * reproduce the sample (to use inline as `upstream.dialect: {base: …, …}`).
 */
import { decryptBiz, digestOf, resolveDialect, type Dialect } from './dialect.ts';
import { shippedDialects } from './dialect-profiles.ts';
import { openResponse } from './envelope.ts';
import { EhcError } from '../errors.ts';

export interface DetectInput {
  /** the request's fields (parsed from JSON or form text) */
  request: Record<string, unknown>;
  /** the request arrived as form-urlencoded text */
  form?: boolean;
  secret: string;
  /** the fixed key of key: fixed dialects, when the app has one */
  appKey?: string;
  /** the answer to the request, parsed */
  response?: Record<string, unknown>;
  /** profiles to try (default: the shipped ones) */
  profiles?: Map<string, Dialect>;
}

export type CheckName = 'decrypt' | 'digest' | 'body' | 'fields' | 'timestamp' | 'version' | 'answer';

export interface ProfileVerdict {
  name: string;
  passed: CheckName[];
  failed: Array<{ check: CheckName; why: string }>;
  /** the decrypted biz_content, when it decrypted */
  biz?: Record<string, unknown>;
}

export interface DetectReport {
  /** profiles that reproduce everything checked, in profile order */
  matches: string[];
  verdicts: ProfileVerdict[];
  /** the best verdict when nothing matches */
  nearest?: ProfileVerdict;
  /** byte-level knobs (over the nearest profile) that do reproduce digest and decryption, when searched and found */
  inline?: Record<string, unknown>;
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

function tryDecrypt(content: string, secret: string, d: Dialect): { json: string; biz: Record<string, unknown> } | string {
  try {
    const json = decryptBiz(content, secret, d);
    const biz = JSON.parse(json) as unknown;
    if (typeof biz !== 'object' || biz === null || Array.isArray(biz)) return 'biz_content decrypts, but not to a JSON object';
    return { json, biz: biz as Record<string, unknown> };
  } catch (err) {
    return err instanceof EhcError ? err.message : String(err);
  }
}

function digestMatches(req: Record<string, unknown>, json: string | undefined, secret: string, d: Dialect): boolean {
  const sample = str(req.digest);
  if (!sample) return false;
  if (d.digestOver === 'plaintext' && json === undefined) return false;
  const fields = d.digestOver === 'plaintext' ? { ...req, biz_content: json } : req;
  return digestOf(fields, secret, d) === sample;
}

/** Wire names any profile gives a method's fields (to notice a sample using names this profile does not). */
function knownWireNames(profiles: Map<string, Dialect>, method: string): Set<string> {
  const out = new Set<string>();
  for (const d of profiles.values()) {
    for (const w of Object.values(d.fields[method] ?? {})) out.add(w);
    for (const w of Object.keys(d.extraFields[method] ?? {})) out.add(w);
  }
  return out;
}

function fieldsProblem(biz: Record<string, unknown>, method: string, d: Dialect, known: Set<string>): string | undefined {
  const map = d.fields[method] ?? {};
  const mine = new Set([...Object.values(map), ...Object.keys(d.extraFields[method] ?? {})]);
  for (const [national, wire] of Object.entries(map)) if (national in biz && !(wire in biz)) return `${national} should travel as ${wire}`;
  for (const k of Object.keys(biz)) if (known.has(k) && !mine.has(k)) return `${k} is not a field name of this dialect`;
  for (const k of Object.keys(d.extraFields[method] ?? {})) if (!(k in biz)) return `${k} is missing`;
  return undefined;
}

function answerProblem(resp: Record<string, unknown>, secret: string, d: Dialect): string | undefined {
  try {
    openResponse(resp, { secret, dialect: d });
    return undefined;
  } catch (err) {
    const e = err as EhcError;
    // a business failure read correctly is the right shape; digest/decrypt/shape errors are not
    if (e instanceof EhcError && !['9003', '9007', '9008', '9999'].includes(e.code)) return undefined;
    return e.message;
  }
}

export function judge(input: DetectInput, name: string, d: Dialect, known: Set<string>): ProfileVerdict {
  const v: ProfileVerdict = { name, passed: [], failed: [] };
  const pass = (c: CheckName) => v.passed.push(c);
  const fail = (check: CheckName, why: string) => v.failed.push({ check, why });
  const req = input.request;
  const dialect = d.key === 'fixed' && input.appKey ? { ...d, appKey: input.appKey } : d;
  let json: string | undefined;
  const content = str(req.biz_content);
  if (dialect.key === 'fixed' && !dialect.appKey) fail('decrypt', 'this dialect encrypts with a fixed app key: give --app-key');
  else if (!content) fail('decrypt', 'the sample has no biz_content');
  else {
    const r = tryDecrypt(content, input.secret, dialect);
    if (typeof r === 'string') fail('decrypt', r);
    else {
      pass('decrypt');
      json = r.json;
      v.biz = r.biz;
    }
  }
  if (dialect.key === 'fixed' && !dialect.appKey) fail('digest', 'not checked without the fixed key');
  else if (digestMatches(req, json, input.secret, dialect)) pass('digest');
  else fail('digest', str(req.digest) ? 'the digest is not reproduced' : 'the sample has no digest');
  if (!!input.form === (d.body === 'form')) pass('body');
  else fail('body', `this dialect posts ${d.body === 'form' ? 'form-urlencoded' : 'JSON'} bodies`);
  const ts = str(req.timestamp) ?? '';
  if ((d.timestamp === 'ms' ? /^\d{13}$/ : /^\d{14}$/).test(ts)) pass('timestamp');
  else fail('timestamp', `timestamp ${JSON.stringify(ts)} is not ${d.timestamp === 'ms' ? 'ms since the epoch' : 'yyyyMMddHHmmss'}`);
  if (d.version === null || str(req.version) === d.version) pass('version');
  else fail('version', `this dialect sends version ${d.version}`);
  if (v.biz) {
    const problem = fieldsProblem(v.biz, str(req.method) ?? '', d, known);
    if (problem) fail('fields', problem);
    else pass('fields');
  }
  if (input.response) {
    const problem = answerProblem(input.response, input.secret, dialect);
    if (problem) fail('answer', problem);
    else pass('answer');
  }
  return v;
}

const WEIGHT: Record<CheckName, number> = { decrypt: 8, digest: 8, answer: 4, fields: 2, body: 1, timestamp: 1, version: 1 };
const score = (v: ProfileVerdict) => v.passed.reduce((n, c) => n + WEIGHT[c], 0);

/** Byte-level knob values searched when no profile reproduces the sample. */
const SEARCH: Array<[keyof Dialect, unknown[]]> = [
  ['key', ['hex-prefix', 'ascii16', 'hex-decoded', 'fixed']],
  ['plaintext', ['hex-text', 'raw']],
  ['padding', ['pkcs7', 'zero']],
  ['encoding', ['hex', 'base64']],
  ['charset', ['utf-8', 'gbk']],
  ['digestRecipe', ['sorted-pairs', 'json-text']],
  ['digestOver', ['ciphertext', 'plaintext']],
  ['emptyFields', ['skip', 'keep', 'keep-null']],
  ['secretSuffix', ['app_secret', 'bare']],
  ['digestCase', ['upper', 'lower']],
];

function* combos(i = 0, acc: Record<string, unknown> = {}): Generator<Record<string, unknown>> {
  if (i === SEARCH.length) {
    yield { ...acc };
    return;
  }
  const [k, values] = SEARCH[i]!;
  for (const v of values) {
    acc[k] = v;
    yield* combos(i + 1, acc);
  }
}

/**
 * Search knob combinations over `base` for ones that decrypt the sample and reproduce its digest; the
 * one closest to base (fewest knobs changed), as the knobs that differ from base.
 */
function searchKnobs(input: DetectInput, base: Dialect): Record<string, unknown> | undefined {
  const content = str(input.request.biz_content);
  if (!content || !str(input.request.digest)) return undefined;
  const crypto = new Map<string, string | undefined>();
  let best: Record<string, unknown> | undefined;
  for (const c of combos()) {
    if (c.key === 'fixed' && !input.appKey) continue;
    const changed = SEARCH.filter(([k]) => JSON.stringify(c[k]) !== JSON.stringify(base[k]));
    if (best && changed.length >= Object.keys(best).length) continue;
    const d = resolveDialect(c as never, base, { appKey: input.appKey });
    const ck = `${d.key}|${d.plaintext}|${d.padding}|${d.encoding}|${d.charset}`;
    if (!crypto.has(ck)) {
      const r = tryDecrypt(content, input.secret, d);
      crypto.set(ck, typeof r === 'string' ? undefined : r.json);
    }
    const json = crypto.get(ck);
    if (json === undefined || !digestMatches(input.request, json, input.secret, d)) continue;
    best = Object.fromEntries(changed.map(([k]) => [k, c[k]]));
    if (changed.length === 0) break;
  }
  return best;
}

export function detectDialect(input: DetectInput): DetectReport {
  const profiles = input.profiles ?? shippedDialects();
  const known = knownWireNames(profiles, str(input.request.method) ?? '');
  const verdicts = [...profiles].map(([name, d]) => judge(input, name, d, known));
  const matches = verdicts.filter((v) => v.failed.length === 0).map((v) => v.name);
  if (matches.length) return { matches, verdicts };
  // nearest: the best score; among equals, the profile that needs the fewest knobs changed to reproduce it
  const best = Math.max(...verdicts.map(score));
  const tied = verdicts.filter((v) => score(v) === best);
  const found = tied.map((v) => ({ v, inline: searchKnobs(input, profiles.get(v.name)!) }));
  const pick = found.filter((f) => f.inline).sort((a, b) => Object.keys(a.inline!).length - Object.keys(b.inline!).length)[0] ?? found[0];
  const report: DetectReport = { matches, verdicts, nearest: pick?.v };
  if (pick?.inline) report.inline = { base: pick.v.name, ...pick.inline };
  return report;
}
