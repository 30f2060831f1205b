/**
 * The national protocol envelope (材料三 附录A §3, ehc-protocol.md §3.3): seal and open requests and
 * responses. The appliance uses sealRequest/openResponse; the simulator (and any card-system side)
 * uses openRequest/sealResponse. A response is trusted only after its digest verifies.
 */
import { timingSafeEqual } from 'node:crypto';
import { EhcError, isReturnCode, type ReturnCode } from '../errors.ts';
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
  version: string;
  /** ms since epoch as text; defaults to now */
  timestamp?: string;
  biz: Biz;
  secret: string;
  dialect?: Dialect;
}

export function sealRequest(input: SealRequestInput): RequestEnvelope {
  const dialect = input.dialect ?? NATIONAL_V31;
  const json = bizText(input.biz);
  const env: Omit<RequestEnvelope, 'digest'> = {
    app_id: input.appId,
    biz_content: encryptBiz(json, input.secret, dialect),
    digest_type: DIGEST_TYPE,
    enc_type: ENC_TYPE,
    method: input.method,
    term_id: input.termId,
    timestamp: input.timestamp ?? String(Date.now()),
    version: input.version,
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
  biz: Record<string, unknown>;
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
  const biz = jsonObject(bizJson, '9001', 'biz_content');
  return { envelope: b as unknown as RequestEnvelope, appId, secret: app.secret, dialect, biz, bizJson };
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

export function sealResponse(input: SealResponseInput): ResponseEnvelope {
  const dialect = input.dialect ?? NATIONAL_V31;
  const json = input.biz === undefined ? undefined : bizText(input.biz);
  if (json !== undefined && input.secret === undefined) throw new EhcError('9006', 'cannot encrypt a response body without the app secret');
  const env: ResponseEnvelope = {
    app_id: input.appId,
    ...(json !== undefined ? { biz_content: encryptBiz(json, input.secret!, dialect) } : {}),
    digest_type: DIGEST_TYPE,
    enc_type: ENC_TYPE,
    method: input.method,
    ret_code: input.retCode,
    ret_msg: input.retMsg,
    timestamp: input.timestamp ?? formatCst(new Date()),
    version: input.version,
  };
  if (input.secret !== undefined) env.digest = digestOf(digestFields(env, json, dialect), input.secret, dialect);
  return env;
}

export interface OpenedResponse {
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

/**
 * Appliance side: verify the digest (mismatch → 9003, never trusted), then the business code
 * (≠ 0000 → EhcError with that code and ret_msg), then decrypt the body.
 */
export function openResponse(body: unknown, opts: { secret: string; dialect?: Dialect }): OpenedResponse {
  const dialect = opts.dialect ?? NATIONAL_V31;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new EhcError('9008', 'response is not a JSON object');
  const b = body as Record<string, unknown>;
  const retCode = str(b.ret_code);
  const retMsg = str(b.ret_msg) ?? '';
  if (!retCode) throw new EhcError('9008', 'response has no ret_code');
  const digest = str(b.digest) ?? '';
  const content = str(b.biz_content) || undefined;
  const failure = (): EhcError =>
    new EhcError(isReturnCode(retCode) ? retCode : '9999', `home card system answered ${retCode}${retMsg ? ` ${retMsg}` : ''}`);
  if (!digest) {
    if (retCode !== '0000' && UNSIGNED_FAILURES.has(retCode)) throw failure();
    throw new EhcError('9003', `response carries no digest (ret_code ${retCode})`);
  }
  let bizJson = checkDigest(b as { biz_content?: string }, digest, content, opts.secret, dialect, 'response digest check failed: not trusted');
  if (retCode !== '0000') throw failure();
  if (content === undefined) return { retCode, retMsg, biz: {}, envelope: b };
  bizJson ??= decryptBiz(content, opts.secret, dialect);
  return { retCode, retMsg, biz: jsonObject(bizJson, '9008', 'response biz_content'), envelope: b };
}
