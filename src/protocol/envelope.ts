/**
 * The national protocol envelope (材料三 附录A §3, ehc-protocol.md §3.3): seal and open requests and
 * responses, in the national reading or a dialect (dialect.ts: bytes; here: field-name maps,
 * timestamp and version forms, answer mapping). The appliance uses sealRequest/openResponse; the
 * simulator (and any card-system side) uses openRequest/sealResponse. A signed response is trusted
 * only after its digest verifies; a dialect with `signedAnswers: false` is trusted on the mutual-TLS
 * channel alone.
 */
import { timingSafeEqual } from 'node:crypto';
import { EhcError, UpstreamAnswerError, isReturnCode, type ReturnCode } from '../errors.ts';
import { formatCst } from '../platform/time.ts';
import { decryptBiz, digestOf, encryptBiz, NATIONAL_V31, type Dialect } from './dialect.ts';

export const DIGEST_TYPE = 'SM3';
export const ENC_TYPE = 'SM4';

export interface RequestEnvelope {
  app_id: string;
  biz_content: string;
  digest: string;
  digest_type: string;
  enc_type: string;
  method: string;
  term_id: string;
  timestamp: string;
  version: string;
}

export interface ResponseEnvelope {
  app_id: string;
  biz_content?: string;
  digest?: string;
  digest_type: string;
  enc_type: string;
  method: string;
  ret_code: string;
  ret_msg: string;
  timestamp: string;
  version: string;
}

/** A business body: an object (serialised with JSON.stringify, key order kept) or the exact JSON text. */
export type Biz = Record<string, unknown> | string;

const bizText = (biz: Biz) => (typeof biz === 'string' ? biz : JSON.stringify(biz));

/** National biz field names → the dialect's wire names for `method`, plus its extra fields ({term_id} filled in). */
export function toWireBiz(biz: Record<string, unknown>, method: string, dialect: Dialect, termId = ''): Record<string, unknown> {
  const map = dialect.fields[method] ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(biz)) out[map[k] ?? k] = v;
  for (const [k, v] of Object.entries(dialect.extraFields[method] ?? {})) if (!(k in out)) out[k] = v.replaceAll('{term_id}', termId);
  return out;
}

/** The dialect's wire names → national names (extra fields dropped). */
export function fromWireBiz(biz: Record<string, unknown>, method: string, dialect: Dialect): Record<string, unknown> {
  const map = dialect.fields[method] ?? {};
  const back = new Map(Object.entries(map).map(([national, wire]) => [wire, national]));
  const extra = dialect.extraFields[method] ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(biz)) {
    if (k in extra && !back.has(k)) continue;
    out[back.get(k) ?? k] = v;
  }
  return out;
}

/** The request timestamp in the dialect's form. */
export function timestampFor(dialect: Pick<Dialect, 'timestamp'>, at: Date = new Date()): string {
  return dialect.timestamp === 'yyyyMMddHHmmss' ? formatCst(at) : String(at.getTime());
}

/** What the digest sees as biz_content: the ciphertext as sent, or the plain JSON (dialect). */
function digestFields<T extends { biz_content?: string }>(env: T, plainJson: string | undefined, dialect: Dialect): T {
  if (dialect.digestOver === 'plaintext' && env.biz_content !== undefined) return { ...env, biz_content: plainJson };
  return env;
}

function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a.toUpperCase(), 'latin1');
  const y = Buffer.from(b.toUpperCase(), 'latin1');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Check an envelope's digest; 9003 when it does not match (never trusted). When the dialect digests
 * the plaintext, the body is decrypted first (a body that does not decrypt is a digest failure too)
 * and the decrypted JSON is returned so the caller need not decrypt it again.
 */
function checkDigest(env: { biz_content?: string }, digest: string, content: string | undefined, secret: string, dialect: Dialect, failure: string): string | undefined {
  let bizJson: string | undefined;
  if (dialect.digestOver === 'plaintext' && content !== undefined) {
    try {
      bizJson = decryptBiz(content, secret, dialect);
    } catch {
      throw new EhcError('9003', `${failure} (biz_content does not decrypt)`);
    }
  }
  const expected = digestOf(digestFields(env, bizJson, dialect), secret, dialect);
  if (!digestsEqual(digest, expected)) throw new EhcError('9003', failure);
  return bizJson;
}

export interface SealRequestInput {
  method: string;
  appId: string;
  termId: string;
  /** the config's version; a dialect with its own version form sends that instead */
  version: string;
  /** as sent; defaults to now in the dialect's form (ms since epoch, national) */
  timestamp?: string;
  /** biz with national field names (renamed per the dialect), or the exact JSON text (sent as is) */
  biz: Biz;
  secret: string;
  dialect?: Dialect;
}

export function sealRequest(input: SealRequestInput): RequestEnvelope {
  const dialect = input.dialect ?? NATIONAL_V31;
  const json = typeof input.biz === 'string' ? input.biz : bizText(toWireBiz(input.biz, input.method, dialect, input.termId));
  const env: Omit<RequestEnvelope, 'digest'> = {
    app_id: input.appId,
    biz_content: encryptBiz(json, input.secret, dialect),
    digest_type: dialect.digestType,
    enc_type: dialect.encType,
    method: input.method,
    term_id: input.termId,
    timestamp: input.timestamp ?? timestampFor(dialect),
    version: dialect.version ?? input.version,
  };
  return { ...env, digest: digestOf(digestFields(env, json, dialect), input.secret, dialect) };
}

export interface AppLookup {
  /** the app's secret and dialect, or undefined when the app is not registered */
  (appId: string): { secret: string; dialect?: Dialect } | undefined;
}

export interface OpenedRequest {
  envelope: RequestEnvelope;
  appId: string;
  secret: string;
  dialect: Dialect;
  /** business fields with national names (the dialect's wire names mapped back, extra fields dropped) */
  biz: Record<string, unknown>;
  /** business fields as on the wire */
  wireBiz: Record<string, unknown>;
  bizJson: string;
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/**
 * Card-system side: check the protocol fields in the spec's order, verify the digest, decrypt.
 * Throws EhcError 1001/1002/1004/1006/1007/1008, 9003 (digest), 9007 (decrypt), 9001 (biz not a JSON object).
 */
export function openRequest(body: unknown, lookup: AppLookup): OpenedRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new EhcError('9008', 'request is not a JSON object');
  const b = body as Record<string, unknown>;
  const appId = str(b.app_id);
  if (!appId) throw new EhcError('1001', 'app_id is empty');
  if (!str(b.term_id)) throw new EhcError('1002', 'term_id is empty');
  if (!str(b.method)) throw new EhcError('1004', 'method is empty');
  if (str(b.enc_type) !== ENC_TYPE) throw new EhcError('1006', `unknown enc_type ${JSON.stringify(b.enc_type)}`);
  if (str(b.digest_type) !== DIGEST_TYPE) throw new EhcError('1007', `unknown digest_type ${JSON.stringify(b.digest_type)}`);
  const app = lookup(appId);
  if (!app) throw new EhcError('1008', `app ${appId} is not registered`);
  const dialect = app.dialect ?? NATIONAL_V31;
  const content = str(b.biz_content);
  if (!content) throw new EhcError('9001', 'biz_content is empty');
  const digest = str(b.digest) ?? '';
  let bizJson = checkDigest(b as { biz_content?: string }, digest, content, app.secret, dialect, 'digest check failed');
  bizJson ??= decryptBiz(content, app.secret, dialect);
  const wireBiz = jsonObject(bizJson, '9001', 'biz_content');
  const biz = fromWireBiz(wireBiz, str(b.method)!, dialect);
  return { envelope: b as unknown as RequestEnvelope, appId, secret: app.secret, dialect, biz, wireBiz, bizJson };
}

/** Decrypted biz_content as a JSON object; anything else is `code` (9001 for requests, 9008 for answers). */
function jsonObject(json: string, code: '9001' | '9008', what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new EhcError(code, `${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EhcError(code, `${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

export interface SealResponseInput {
  /** national code; `0000` is sent as the dialect's first success value */
  retCode: ReturnCode | string;
  retMsg: string;
  appId: string;
  method: string;
  version: string;
  /** defaults to now as yyyyMMddHHmmss (CST), as in the seed's response example */
  timestamp?: string;
  /** success body; omitted on failure */
  biz?: Biz;
  /** without a secret (unknown app) the response carries no digest */
  secret?: string;
  dialect?: Dialect;
}

/** A response as sent: national field names, or the dialect's code/message fields and wrapper. */
export type SealedResponse = ResponseEnvelope | Record<string, unknown>;

export function sealResponse(input: SealResponseInput): ResponseEnvelope;
export function sealResponse(input: SealResponseInput): SealedResponse {
  const dialect = input.dialect ?? NATIONAL_V31;
  const json = input.biz === undefined ? undefined : bizText(input.biz);
  if (json !== undefined && input.secret === undefined) throw new EhcError('9006', 'cannot encrypt a response body without the app secret');
  const code = input.retCode === '0000' ? dialect.success[0]! : input.retCode;
  const flat: Record<string, unknown> = {
    app_id: input.appId,
    ...(json !== undefined ? { biz_content: encryptBiz(json, input.secret!, dialect) } : {}),
    digest_type: dialect.digestType,
    enc_type: dialect.encType,
    method: input.method,
    [dialect.codeField]: code,
    [dialect.messageField]: input.retMsg,
    timestamp: input.timestamp ?? formatCst(new Date()),
    version: input.version,
  };
  if (input.secret !== undefined && dialect.signedAnswers) flat.digest = digestOf(digestFields(flat as { biz_content?: string }, json, dialect), input.secret, dialect);
  if (!dialect.wrapper) return flat;
  const { [dialect.codeField]: c, [dialect.messageField]: m, ...inner } = flat;
  return { [dialect.codeField]: c, [dialect.messageField]: m, [dialect.wrapper]: inner };
}

export interface OpenedResponse {
  /** the national success code, whatever the dialect's success value was */
  retCode: '0000';
  retMsg: string;
  /** the decrypted business body ({} when a success carries none); nested JSON (e.g. `extra`) stays a string */
  biz: Record<string, unknown>;
  envelope: Record<string, unknown>;
}

/**
 * Failures a card system may answer before it knows whose secret to digest with (protocol fields,
 * unknown app): accepted without a digest. Every other answer must carry a digest that verifies.
 */
const UNSIGNED_FAILURES = new Set(['1001', '1002', '1003', '1004', '1005', '1006', '1007', '1008', '1009', '1010']);

/** The answer's fields in one flat object: a wrapper object's fields lifted beside code and message. */
export function flattenAnswer(b: Record<string, unknown>, dialect: Dialect): Record<string, unknown> {
  const inner = dialect.wrapper ? b[dialect.wrapper] : undefined;
  if (!dialect.wrapper || typeof inner !== 'object' || inner === null || Array.isArray(inner)) return b;
  const { [dialect.wrapper]: _w, ...rest } = b;
  return { ...rest, ...(inner as Record<string, unknown>) };
}

/**
 * Appliance side: verify the digest (mismatch → 9003, never trusted), then the business code
 * (not a success value → EhcError with that code and message), then decrypt the body.
 */
export function openResponse(body: unknown, opts: { secret: string; dialect?: Dialect }): OpenedResponse {
  const dialect = opts.dialect ?? NATIONAL_V31;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new EhcError('9008', 'response is not a JSON object');
  const b = flattenAnswer(body as Record<string, unknown>, dialect);
  const rawCode = b[dialect.codeField];
  const retCode = typeof rawCode === 'number' ? String(rawCode) : str(rawCode);
  const retMsg = str(b[dialect.messageField]) ?? '';
  if (!retCode) throw new EhcError('9008', `response has no ${dialect.codeField}`);
  const ok = dialect.success.includes(retCode);
  const digest = str(b.digest) ?? '';
  const content = str(b.biz_content) || undefined;
  const failure = (): EhcError =>
    new UpstreamAnswerError(retCode, `home card system answered ${retCode}${retMsg ? ` ${retMsg}` : ''}`);
  let bizJson: string | undefined;
  if (dialect.signedAnswers) {
    if (!digest) {
      if (!ok && UNSIGNED_FAILURES.has(retCode)) throw failure();
      throw new EhcError('9003', `response carries no digest (${dialect.codeField} ${retCode})`);
    }
    bizJson = checkDigest(b as { biz_content?: string }, digest, content, opts.secret, dialect, 'response digest check failed: not trusted');
  }
  if (!ok) throw failure();
  if (content === undefined) return { retCode: '0000', retMsg, biz: {}, envelope: b };
  bizJson ??= decryptBiz(content, opts.secret, dialect);
  const method = str(b.method) ?? '';
  return { retCode: '0000', retMsg, biz: fromWireBiz(jsonObject(bizJson, '9008', 'response biz_content'), method, dialect), envelope: b };
}
