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
  override readonly name = 'EhcError';
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
