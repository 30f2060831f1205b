/**
 * Return codes of the national protocol (材料三 附录A §5) and the one error type the whole
 * appliance uses. Errors are values: a spec code, a human message, and (where it came from
 * somewhere else) the cause. Native and network errors are mapped to these once, at the edge
 * that sees them.
 */
export const RETURN_CODES = {
  '0000': '交易成功 ok',
  '9998': '交易失败 failed',
  '9999': '未知错误 unknown error',
  '1001': 'app_id 为空 app id empty',
  '1002': 'term_id 为空 terminal id empty',
  '1003': '版本号不支持 version unsupported',
  '1004': 'method 为空 method empty',
  '1005': 'method 非法 method illegal',
  '1006': '未知加密类型 unknown enc type',
  '1007': '未知摘要类型 unknown digest type',
  '1008': '应用不存在 app unknown',
  '1009': '终端不存在 terminal unknown',
  '1010': '无权限 no permission',
  '2001': '二维码已过期 code expired',
  '2002': '二维码非法 code illegal',
  '2003': '有效期为空 validity empty',
  '2004': '有效期非法 validity illegal',
  '2005': '加密服务失败 crypto service failed',
  '3001': '无记录 no record',
  '3002': '流水号重复 duplicate serial',
  '3003': '资源繁忙 resource busy',
  '8001': '网络读取失败 network read',
  '8002': '网络传输失败 network transfer',
  '8003': '请求为空 empty request',
  '8004': '连接失败 connect failed',
  '8005': '数据库连接失败 db connect',
  '8006': '数据库配置错误 db config',
  '8007': '数据库操作失败 db operation',
  '8008': '加密服务失败 crypto service failed',
  '8009': '内部错误 internal',
  '9001': '参数错误 bad parameters',
  '9002': '签名失败 sign failed',
  '9003': '摘要校验失败 digest check failed',
  '9004': '响应为空 empty response',
  '9005': '系统不支持 system unsupported',
  '9006': '加密失败 encrypt failed',
  '9007': '解密失败 decrypt failed',
  '9008': '报文读取错误 message read error',
} as const;

export type ReturnCode = keyof typeof RETURN_CODES;

export function isReturnCode(value: unknown): value is ReturnCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(RETURN_CODES, value);
}

export class EhcError extends Error {
  override readonly name: string = 'EhcError';
  /** The kind's stable code (undici's pattern): a subclass names its kind; a bare EhcError is only a return code. */
  readonly kind: string = 'EHC_ERR_RETURN_CODE';
  constructor(
    readonly code: ReturnCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  toJSON(): { ret_code: ReturnCode; ret_msg: string } {
    return { ret_code: this.code, ret_msg: this.message };
  }
}

/** Wrap anything thrown into an EhcError, keeping one that already is. */
export function asEhcError(err: unknown, fallback: ReturnCode = '8009', context = 'internal error'): EhcError {
  if (err instanceof EhcError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new EhcError(fallback, `${context}: ${detail}`, { cause: err });
}

/*
 * Internal error classes, one per kind of failure (undici's pattern: a class per kind, a stable `kind`
 * code). Each fixes, once, the wire return code it maps to (`code`). HTTP statuses (src/his/http-status.ts)
 * and replay decisions (src/store/replay.ts) switch on the class; a bare EhcError (still thrown where
 * a spec code is the whole story: a code that does not verify, a refused envelope) falls back to its code.
 */
type Options = { cause?: unknown };

/** Bad input from a caller or a config value the component cannot use (9001). */
export class BadRequestError extends EhcError {
  override readonly name: string = 'BadRequestError';
  override readonly kind: string = 'EHC_ERR_BAD_REQUEST';
  constructor(message: string, options?: Options) {
    super('9001', message, options);
  }
}

/** The home card system cannot be reached now: try again later (base of the connect/TLS/timeout kinds). */
export class UpstreamUnreachableError extends EhcError {
  override readonly name: string = 'UpstreamUnreachableError';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_UNREACHABLE';
  constructor(message: string, options?: Options & { code?: '8001' | '8002' | '8004' }) {
    super(options?.code ?? '8004', message, options);
  }
}

/** TCP connect refused, host or network unreachable, DNS failure (8004). */
export class UpstreamConnectError extends UpstreamUnreachableError {
  override readonly name: string = 'UpstreamConnectError';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_CONNECT';
}

/** No connection within upstream.connectTimeoutMs (8004). */
export class UpstreamConnectTimeoutError extends UpstreamUnreachableError {
  override readonly name: string = 'UpstreamConnectTimeoutError';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_CONNECT_TIMEOUT';
}

/** The TLS handshake failed or the peer dropped the session after it (client certificate refused) (8004). */
export class UpstreamTlsError extends UpstreamUnreachableError {
  override readonly name: string = 'UpstreamTlsError';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_TLS';
}

/** Connected, but no answer within upstream.timeoutMs (8001). */
export class UpstreamTimeoutError extends UpstreamUnreachableError {
  override readonly name: string = 'UpstreamTimeoutError';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_TIMEOUT';
  constructor(message: string, options?: Options) {
    super(message, { ...options, code: '8001' });
  }
}

/** The connection broke mid-transfer (8002). */
export class UpstreamTransferError extends UpstreamUnreachableError {
  override readonly name: string = 'UpstreamTransferError';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_TRANSFER';
  constructor(message: string, options?: Options) {
    super(message, { ...options, code: '8002' });
  }
}

/** The home card system answered, with a failure return code: `code` is ITS code (9999 when not one of 附录A). */
export class UpstreamAnswerError extends EhcError {
  override readonly name: string = 'UpstreamAnswerError';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_ANSWER';
  constructor(
    readonly remoteCode: string,
    message: string,
    options?: Options,
  ) {
    super(isReturnCode(remoteCode) && remoteCode !== '0000' ? remoteCode : '9999', message, options);
  }
}

/** The crypto card failed or is not available (8008). */
export class CardError extends EhcError {
  override readonly name: string = 'CardError';
  override readonly kind: string = 'EHC_ERR_CARD';
  constructor(message: string, options?: Options) {
    super('8008', message, options);
  }
}

/** A scanner could not be opened or was refused: a device state, never a wire answer (8009 if it ever is one). */
export class ScannerError extends EhcError {
  override readonly name: string = 'ScannerError';
  override readonly kind: string = 'EHC_ERR_SCANNER';
  constructor(message: string, options?: Options & { code?: '8009' | '9005' }) {
    super(options?.code ?? '8009', message, options);
  }
}
