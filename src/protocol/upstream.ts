/**
 * The home card system as the appliance sees it. Implementations: HttpUpstream (mutual TLS over the
 * site's SSL VPN tunnel). Every call carries an `out_verify_no` that the outbox reuses on replay, so
 * the home system can recognise a repeat (3002 = already done).
 */
import type { DialectSpec } from './dialect.ts';

/** `upstream.dialect`: a shipped profile's name (dialects/*.json) or an inline dialect (src/protocol/dialect.ts). */
export type DialectConfig = string | DialectSpec;

/** The `upstream` section of the config (src/config/schema.ts), as the upstream link reads it. */
export interface UpstreamSettings {
  url: string;
  crossDomainUrl: string;
  appId: string;
  appSecret: string;
  termId: string;
  version: string;
  timeoutMs: number;
  connectTimeoutMs: number;
  healthIntervalMs: number;
  insecure: boolean;
  tls?: { ca?: string; cert?: string; key?: string; servername?: string };
  dialect: DialectConfig;
  /** the fixed SM4 key issued with the app (dialects with key: fixed), 32 hex digits */
  appKey?: string;
  /** province methods, each off unless the site's card system offers it (src/protocol/province-jobs.ts) */
  province?: { usecarddate: boolean; usecarddateHour: number; registerTerminals: boolean };
}

export const METHOD_VERIFY = 'ehc.ehealthcode.verify';
export const METHOD_CROSS_DOMAIN = 'ehn.ehealthcard.syncCheckErhcInfo';
/** Province methods (dialects): the daily card-usage upload and reading-terminal registration. */
export const METHOD_USECARDDATE = 'ehc.ehealthcode.usecarddate';
export const METHOD_REGISTER_TERMINAL = 'ehc.ehealthcode.addterm';
export type VerifyMethod = typeof METHOD_VERIFY | typeof METHOD_CROSS_DOMAIN;
export type ProvinceMethod = typeof METHOD_USECARDDATE | typeof METHOD_REGISTER_TERMINAL;
export type UpstreamMethod = VerifyMethod | ProvinceMethod;

/** Business fields of both verify methods (材料三 附录A), snake_case as on the wire. */
export interface VerifyBiz {
  ehealth_code: string;
  treatment_code: string;
  operator_id: string;
  operator_name: string;
  out_verify_no: string;
  out_verify_time: string; // yyyyMMddHHmmss
}

/**
 * Business fields of a province method (usecarddate batch, terminal registration). `out_verify_no` is
 * the message's serial, fixed when it is queued, so a repeat is recognisable (3002).
 */
export interface ProvinceBiz {
  out_verify_no: string;
  [field: string]: unknown;
}

export type UpstreamBiz = VerifyBiz | ProvinceBiz;

/** What the home system says of a patient; any field may be absent. */
export interface UpstreamIdentity {
  ehealth_card_id?: string;
  id_type?: string;
  id_no?: string;
  user_name?: string;
  user_sex?: string;
  mobile_phone?: string;
  birthday?: string;
  mindex_id?: string;
  issuer_org_code?: string;
  issuer_org_name?: string;
  [field: string]: unknown;
}

export interface UpstreamCallContext {
  /** 识读终端 number of the scanner that read the code, else the appliance's own term_id. */
  termId?: string;
  signal?: AbortSignal;
}

export interface UpstreamHealth {
  reachable: boolean;
  url: string;
  latencyMs?: number;
  lastError?: string;
  checkedAt?: string;
}

export interface Upstream {
  /** Throws EhcError: the home system's ret_code, or 8001/8002/8004 for the network, 9003 for a bad digest. */
  call(method: UpstreamMethod, biz: UpstreamBiz, ctx?: UpstreamCallContext): Promise<UpstreamIdentity>;
  health(): Promise<UpstreamHealth>;
  close(): Promise<void>;
}
