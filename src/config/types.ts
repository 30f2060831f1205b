import type { VerifyPolicy } from '../verify/types.ts';
import type { KeyMap } from '../crypto/card.ts';
import type { DeviceOptions } from '../../drivers/types.ts';
import type { DialectSpec } from '../protocol/dialect.ts';

/** `upstream.dialect`: a shipped profile's name (dialects/*.json) or an inline dialect (src/protocol/dialect.ts). */
export type DialectConfig = string | DialectSpec;

/** One `scanners[]` entry: the serial framing options are the drivers' own DeviceOptions. */
export interface ScannerConfig extends Pick<DeviceOptions, 'baudRate' | 'dataBits' | 'parity' | 'stopBits' | 'suffix' | 'interCharTimeoutMs'> {
  driver: 'serial' | 'hid-pos' | 'hid-keyboard';
  path?: string;
  vendorId?: number;
  productId?: number;
  station?: string;
  name?: string;
  stmCode?: string;
}

export interface ApplianceConfig {
  /** absolute path of the file this came from */
  configPath: string;
  /** folder of configPath: relative paths in the file resolve against it */
  configDir: string;
  stateDir: string;
  site: { orgCode: string; orgName?: string; localEhcins: string[]; termId: string };
  his: {
    listen: string;
    apiKeys: string[];
    tls?: { cert: string; key: string; ca?: string };
    bodyLimitBytes: number;
    connections: { max: number; perAddress: number; reserve: number; headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number; idleTimeoutMs: number };
    authThrottle: { maxFailures: number; windowSeconds: number; globalMaxFailures: number };
  };
  upstream: {
    url: string;
    crossDomainUrl: string;
    appId: string;
    appSecret: string;
    termId: string;
    version: string;
    timeoutMs: number;
    connectTimeoutMs: number;
    healthIntervalMs: number;
    /** circuit breaker: consecutive link failures of calls that open it (default 3) */
    breakerFailures?: number;
    /** circuit breaker: time open before the next probe (default 1000) */
    breakerRetryMs?: number;
    /** the health probe's whole round trip (default 1000) */
    probeTimeoutMs?: number;
    /** warn this many days before the client certificate or the pinned CA expires (default 30) */
    certWarnDays?: number;
    insecure: boolean;
    tls?: { ca?: string; cert?: string; key?: string; servername?: string };
    dialect: DialectConfig;
    /** the fixed SM4 key issued with the app (dialects with key: fixed), 32 hex digits */
    appKey?: string;
  };
  card: {
    driver: 'soft' | 'sdf';
    keyFile: string;
    keys: KeyMap;
    sdf?: {
      library: string;
      sessions?: number;
      quirks?: 'standard' | 'ecc32' | 'sms4';
      keyPassword?: string;
      kek?: number;
      retryMs?: number;
      timeoutMs?: number;
      wrappedKeys?: Partial<Record<'ehcid' | 'validity' | 'storage' | 'mac', string>>;
    };
  };
  verify: {
    policy: VerifyPolicy;
    clockSkewSeconds: number;
    treatmentCode: string;
    operatorId: string;
    operatorName: string;
  };
  simulator: { enabled: boolean; listen: string; ehcin?: string; keys?: { ehcid: string; validity: string } };
  scannerAutoDetect: boolean;
  scanners: ScannerConfig[];
  scan: { dedupeWindowMs: number; streamBuffer: number; maxSubscribers: number; subscriberBuffer: number };
  outbox: { maxRecords: number; maxBytes: number; maxAgeHours: number; whenFull: 'reject-new'; replayBatch: number; replayYieldAbove: number; replayMaxYieldMs: number; replayWindow?: number; replayMaxPerSecond?: number; replayStartJitterMs?: number; replayBackoffBaseMs?: number; replayBackoffMaxMs?: number };
  audit: { retainDays: number; maxBytes: number };
  admin: { apiKeys: string[]; maxFailedAttempts: number; lockoutSeconds: number };
  log: { level: 'debug' | 'info' | 'warn' | 'error'; pii: 'mask' | 'refuse' };
  systemd: { watchdog: boolean };
}
