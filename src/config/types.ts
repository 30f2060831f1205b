/** How verifications are routed (src/verify/verifier.ts). */
export type VerifyPolicy = 'local-first' | 'upstream-first' | 'upstream-only';

/** Key index per role on the crypto card (src/crypto/card.ts `KeyMap`). */
export type CardKeyIndexes = Record<'ehcid' | 'validity' | 'storage' | 'mac' | 'sign', number>;

/** Serial framing of one scanner; the drivers' DeviceOptions (drivers/types.ts) extend it. */
export interface SerialFraming {
  baudRate?: number;
  dataBits?: 5 | 6 | 7 | 8;
  parity?: 'none' | 'even' | 'odd' | 'mark' | 'space';
  stopBits?: 1 | 1.5 | 2;
  /** how a scan ends on a serial line; 'none' = inter-character timeout only */
  suffix?: 'CR' | 'LF' | 'CRLF' | 'none';
  /** serial: a scan ends after this quiet time (always with suffix 'none'; also flushes a stuck partial) */
  interCharTimeoutMs?: number;
}
import type { DialectConfig, UpstreamSettings } from '../protocol/upstream.ts';

export type { DialectConfig };

/** One `scanners[]` entry. */
export interface ScannerConfig extends SerialFraming {
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
    /** read-only keys (status, metrics, history, scan stream without identity fields) */
    viewerKeys: string[];
    tls?: { cert: string; key: string; ca?: string };
    bodyLimitBytes: number;
    connections: { max: number; perAddress: number; reserve: number; headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number; idleTimeoutMs: number };
    authThrottle: { maxFailures: number; windowSeconds: number; globalMaxFailures: number };
    cors: { origins: string[]; maxAgeSeconds: number };
    streamTickets: { ttlSeconds: number; maxOutstanding: number };
    websocket: boolean;
  };
  upstream: UpstreamSettings;
  card: {
    driver: 'soft' | 'sdf';
    keyFile: string;
    keys: CardKeyIndexes;
    sdf?: {
      library: string;
      sessions?: number;
      quirks?: 'standard' | 'ecc32' | 'sms4' | 'sym-key-handle';
      keyPassword?: string;
      kek?: number;
      kekAlg?: 'sm4-ecb' | 'sm4-cbc';
      isk?: number;
      envelopes?: Partial<Record<'ehcid' | 'validity' | 'storage' | 'mac', string>>;
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
    clock: { maxSkewSeconds: number; policy: 'refuse' | 'accept-and-flag' };
  };
  simulator: { enabled: boolean; listen: string; ehcin?: string };
  scannerAutoDetect: boolean;
  scanners: ScannerConfig[];
  scan: { dedupeWindowMs: number; streamBuffer: number; maxSubscribers: number; subscriberBuffer: number };
  outbox: { maxRecords: number; maxBytes: number; maxAgeHours: number; whenFull: 'reject-new'; replayBatch: number; replayYieldAbove: number; replayMaxYieldMs: number; replayWindow?: number; replayMaxPerSecond?: number; replayStartJitterMs?: number; replayBackoffBaseMs?: number; replayBackoffMaxMs?: number };
  audit: { retainDays: number; maxBytes: number; onFailure: 'refuse' | 'continue' };
  admin: { apiKeys: string[]; maxFailedAttempts: number; lockoutSeconds: number };
  log: { level: 'debug' | 'info' | 'warn' | 'error'; pii: 'mask' | 'refuse' };
  systemd: { watchdog: boolean };
  webhooks: { targets: Array<{ name: string; url: string; secret: string; station?: string; timeoutMs: number }>; maxQueued: number; retryMaxMs: number };
}
