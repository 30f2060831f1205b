/**
 * JSON schema of appliance.config.json. Integrators script against these key paths: keep the names.
 * Validated once at start (src/config/load.ts); the first wrong key is reported with the file, then exit 2.
 *
 * The one place of every key: its check, its `default` (Ajv fills them in while validating) and, through
 * json-schema-to-ts, its TypeScript type (`ApplianceConfig` below). A key added here is typed and defaulted.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { DEFAULT_DIALECT } from '../protocol/dialect-profiles.ts';
import type { DialectConfig } from '../protocol/upstream.ts';

const hostPort = { type: 'string', pattern: '^(\\[[0-9a-fA-F:]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$' } as const;
const ehcin = { type: 'string', pattern: '^[0-9]{4}[ABCDEFX][0-9]{4}$' } as const;
const hex16 = { type: 'string', pattern: '^[0-9a-fA-F]{32}$' } as const;
const keyIndex = { type: 'integer', minimum: 0, maximum: 65535 } as const;
/** a key blob wrapped under the card's KEK: 16..512 bytes, as the card's wrap algorithm made it */
const wrappedHex = { type: 'string', pattern: '^(?:[0-9a-fA-F]{2}){16,512}$' } as const;
/** SM2 ciphertext C1 ‖ C3 ‖ C2 of a key: at least 64 + 32 + 16 bytes */
const envelopeHex = { type: 'string', pattern: '^(?:[0-9a-fA-F]{2}){112,1200}$' } as const;

/** Default key indexes on the crypto card; `card.keys` may remap them to the indexes a real card uses. */
export const DEFAULT_KEY_INDEXES = {
  ehcid: 1,
  validity: 2,
  storage: 3, // SM4 for personal data at rest (outbox)
  mac: 4, // HMAC-SM3 for integrity (outbox records, audit chain)
  sign: 1, // SM2 key pair (signing, registration public key)
} as const;

/**
 * Defaults of `card.sdf`, one place: the schema fills them into a loaded config, and SdfCard fills them
 * into the `SdfConfig` that tests, tools and benches build by hand (src/crypto/sdf-card.ts `withSdfDefaults`).
 */
export const SDF_DEFAULTS = { sessions: 8, quirks: 'standard', kekAlg: 'sm4-ecb', retryMs: 5000, timeoutMs: 5000 } as const;

export const configSchema = {
  $id: 'https://ehc-edge.local/appliance.config.schema.json',
  type: 'object',
  additionalProperties: false,
  required: ['site', 'his', 'upstream', 'card', 'verify', 'stateDir'],
  properties: {
    $schema: { type: 'string' },
    stateDir: { type: 'string', minLength: 1 },
    site: {
      type: 'object',
      additionalProperties: false,
      required: ['orgCode', 'localEhcins', 'termId'],
      properties: {
        orgCode: { type: 'string', minLength: 1, maxLength: 64 },
        orgName: { type: 'string' },
        localEhcins: { type: 'array', items: ehcin, uniqueItems: true },
        termId: { type: 'string', minLength: 1, maxLength: 32 },
      },
    },
    his: {
      type: 'object',
      additionalProperties: false,
      required: ['listen', 'apiKeys'],
      properties: {
        listen: hostPort,
        apiKeys: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', minLength: 16, description: 'a key, or sm3:<64 hex> of one' },
        },
        viewerKeys: {
          type: 'array',
          default: [],
          description: 'read-only keys: status page, /v1/status, /metrics, /v1/history, scan stream without identity fields; cannot verify',
          items: { type: 'string', minLength: 16, description: 'a key, or sm3:<64 hex> of one' },
        },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: { cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' } },
        },
        bodyLimitBytes: { type: 'integer', minimum: 256, maximum: 1048576, default: 16384 },
        connections: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'connection budget of the HIS port (src/his/connection-budget.ts)',
          properties: {
            max: { type: 'integer', minimum: 1, maximum: 65536, description: 'open connections for ordinary requests', default: 1024 },
            perAddress: { type: 'integer', minimum: 1, maximum: 65536, description: 'open connections per client address', default: 256 },
            reserve: { type: 'integer', minimum: 1, maximum: 4096, description: 'connections above max for /v1/health, /v1/status, /metrics and the status page only', default: 32 },
            headersTimeoutMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 10_000 },
            requestTimeoutMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 30_000 },
            keepAliveTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 5_000 },
            idleTimeoutMs: { type: 'integer', minimum: 20000, maximum: 3600000, description: 'above the scan stream keep-alive interval (15 s)', default: 120_000 },
          },
        },
        authThrottle: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'failed-auth throttle of every key class (src/his/auth-throttle.ts)',
          properties: {
            maxFailures: { type: 'integer', minimum: 1, maximum: 10000, description: 'failures per client address within the window before 429', default: 10 },
            windowSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
            globalMaxFailures: { type: 'integer', minimum: 1, maximum: 1000000, description: 'failures of all addresses together within the window before every failing address is limited', default: 200 },
          },
        },
        cors: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'browser pages on these origins may call the port (src/his/cors.ts); none by default',
          properties: {
            origins: { type: 'array', uniqueItems: true, default: [], items: { type: 'string', pattern: '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$', description: 'scheme://host[:port], exactly as the browser sends Origin' } },
            maxAgeSeconds: { type: 'integer', minimum: 0, maximum: 86400, description: 'how long a browser may cache a preflight answer', default: 600 },
          },
        },
        websocket: { type: 'boolean', description: 'serve the scan stream over WebSocket too (/v1/scans/ws); see docs/integration: on the package\'s runtime (Node 24.22) other routes stay plain HTTP for clients that offer Upgrade: h2c; on Node 20 such clients must speak plain HTTP/1.1', default: false },
        streamTickets: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'single-use tickets that open the scan stream from a browser (src/his/stream-tickets.ts)',
          properties: {
            ttlSeconds: { type: 'integer', minimum: 5, maximum: 300, default: 30 },
            maxOutstanding: { type: 'integer', minimum: 1, maximum: 100000, default: 1000 },
          },
        },
      },
    },
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'appId', 'appSecret', 'termId', 'version', 'timeoutMs'],
      properties: {
        url: { type: 'string', pattern: '^https?://' },
        crossDomainUrl: { type: 'string', pattern: '^https?://' },
        appId: { type: 'string', minLength: 1 },
        appSecret: { type: 'string', minLength: 16 },
        termId: { type: 'string', minLength: 1 },
        version: { type: 'string', minLength: 1 },
        timeoutMs: { type: 'integer', minimum: 100, maximum: 120000, description: 'read timeout: connected and request sent, no complete answer within this' },
        connectTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000, description: 'connect timeout: no TCP (and TLS) connection within this', default: 3000 },
        healthIntervalMs: { type: 'integer', minimum: 500, maximum: 600000, default: 5000 },
        breakerFailures: { type: 'integer', minimum: 1, maximum: 1000, description: 'consecutive link failures of calls that open the circuit breaker', default: 3 },
        breakerRetryMs: { type: 'integer', minimum: 100, maximum: 600000, description: 'time the breaker stays open before the next probe', default: 1000 },
        probeTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000, description: "the health probe's whole protocol round trip", default: 1000 },
        certWarnDays: { type: 'integer', minimum: 0, maximum: 3650, description: 'warn this many days before the client certificate or pinned CA expires', default: 30 },
        insecure: { type: 'boolean', default: false },
        tls: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ca: { type: 'string' },
            cert: { type: 'string' },
            key: { type: 'string' },
            servername: { type: 'string' },
          },
        },
        dialect: {
          description: 'how the site card system deviates from the national V3.1 reading: a shipped profile (dialects/*.json) by name, or an inline dialect checked against dialects/dialect.schema.json',
          anyOf: [{ type: 'string', minLength: 1 }, { type: 'object' }],
          default: DEFAULT_DIALECT,
        },
        appKey: { type: 'string', pattern: '^[0-9A-Fa-f]{32}$', description: 'fixed SM4 key issued with the app (dialects with key: fixed)' },
        province: {
          description: 'province methods the site card system offers (queued in the outbox)',
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            usecarddate: { type: 'boolean', description: 'upload yesterday\'s card usage daily (ehc.ehealthcode.usecarddate, ≤ 500 records a call)', default: false },
            usecarddateHour: { type: 'integer', minimum: 0, maximum: 23, description: 'hour (China Standard Time) from which yesterday is uploaded', default: 1 },
            registerTerminals: { type: 'boolean', description: 'register each reading terminal (STM number, 表6.4 fields) once', default: false },
          },
        },
      },
    },
    card: {
      type: 'object',
      additionalProperties: false,
      required: ['driver'],
      properties: {
        driver: { enum: ['soft', 'sdf'] },
        keyFile: { type: 'string' },
        keys: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            ehcid: { ...keyIndex, default: DEFAULT_KEY_INDEXES.ehcid },
            validity: { ...keyIndex, default: DEFAULT_KEY_INDEXES.validity },
            storage: { ...keyIndex, default: DEFAULT_KEY_INDEXES.storage },
            mac: { ...keyIndex, default: DEFAULT_KEY_INDEXES.mac },
            sign: { ...keyIndex, default: DEFAULT_KEY_INDEXES.sign },
          },
        },
        sdf: {
          type: 'object',
          additionalProperties: false,
          required: ['library'],
          properties: {
            library: { type: 'string', minLength: 1, description: "path of the vendor's GM/T 0018 SDF shared library" },
            sessions: { type: 'integer', minimum: 1, maximum: 256, description: 'SDF sessions in the pool', default: SDF_DEFAULTS.sessions },
            quirks: { enum: ['standard', 'ecc32', 'sms4', 'sym-key-handle'], description: 'vendor quirk table entry (firmware-bridge/lib/quirks.ts); standard uses only GM/T 0018 functions', default: SDF_DEFAULTS.quirks },
            keyPassword: { type: 'string', description: 'private key access password for SM2 signing' },
            kek: keyIndex,
            kekAlg: { enum: ['sm4-ecb', 'sm4-cbc'], description: 'the algorithm the card wraps keys under the KEK with', default: SDF_DEFAULTS.kekAlg },
            isk: { ...keyIndex, description: "index of the card's SM2 encryption key pair that envelopes are encrypted to (default card.keys.sign)" },
            envelopes: {
              description: "keys as digital envelopes: hex SM2 ciphertext C1 (x‖y, optionally 04‖x‖y) ‖ C3 ‖ C2 of the key, encrypted to the card's encryption public key (SDF_ImportKeyWithISK_ECC)",
              type: 'object',
              additionalProperties: false,
              properties: { ehcid: envelopeHex, validity: envelopeHex, storage: envelopeHex, mac: envelopeHex },
            },
            retryMs: { type: 'integer', minimum: 100, maximum: 600000, description: 'minimum time between reopen attempts of a failed card', default: SDF_DEFAULTS.retryMs },
            timeoutMs: { type: 'integer', minimum: 50, maximum: 600000, description: 'longest a card call may take, queueing included, before the card counts as failed', default: SDF_DEFAULTS.timeoutMs },
            wrappedKeys: {
              description: 'keys wrapped under the KEK at card.sdf.kek with card.sdf.kekAlg (SDF_ImportKeyWithKEK): hex blobs as long as the card made them (`ehc-edge card generate`)',
              type: 'object',
              additionalProperties: false,
              properties: { ehcid: wrappedHex, validity: wrappedHex, storage: wrappedHex, mac: wrappedHex },
            },
          },
        },
      },
    },
    verify: {
      type: 'object',
      additionalProperties: false,
      required: ['policy'],
      properties: {
        policy: { enum: ['local-first', 'upstream-first', 'upstream-only'] },
        clockSkewSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 30 },
        treatmentCode: { type: 'string', pattern: '^[0-9]{6}$', default: '010101' },
        operatorId: { type: 'string', default: 'ehc-edge' },
        operatorName: { type: 'string', default: 'ehc-edge' },
        clock: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'clock discipline (src/ops/clock-discipline.ts)',
          properties: {
            maxSkewSeconds: { type: 'integer', minimum: 1, maximum: 86400, description: 'beyond this difference from the home system or the last known time the clock is suspect', default: 120 },
            policy: { enum: ['refuse', 'accept-and-flag'], description: 'local decisions on dynamic codes while the clock is suspect', default: 'refuse' },
          },
        },
      },
    },
    simulator: {
      description: 'run the home-card-system simulator in-process (demo default; off on site)',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        listen: { ...hostPort, default: '127.0.0.1:18443' },
        ehcin: ehcin,
      },
    },
    scannerAutoDetect: { type: 'boolean', default: true },
    scanners: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['driver'],
        properties: {
          driver: { enum: ['serial', 'hid-pos', 'hid-keyboard'] },
          path: { type: 'string' },
          vendorId: { type: 'integer', minimum: 0, maximum: 65535 },
          productId: { type: 'integer', minimum: 0, maximum: 65535 },
          baudRate: { type: 'integer', minimum: 300, maximum: 4000000 },
          dataBits: { enum: [5, 6, 7, 8] },
          parity: { enum: ['none', 'even', 'odd', 'mark', 'space'] },
          stopBits: { enum: [1, 1.5, 2] },
          suffix: { enum: ['CR', 'LF', 'CRLF', 'none'] },
          interCharTimeoutMs: { type: 'integer', minimum: 1, maximum: 10000 },
          station: { type: 'string' },
          name: { type: 'string' },
          stmCode: { type: 'string', pattern: '^[0-9]{4}[ABCDEFX][0-9]{4}STM[ABCDEFX][0-9]{4}$' },
        },
      },
    },
    scan: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        dedupeWindowMs: { type: 'integer', minimum: 0, maximum: 600000, default: 1500 },
        streamBuffer: { type: 'integer', minimum: 16, maximum: 100000, default: 1000 },
        maxSubscribers: { type: 'integer', minimum: 1, maximum: 100000, description: 'open /v1/scans streams at most; one more is answered 503', default: 256 },
        subscriberBuffer: { type: 'integer', minimum: 16, maximum: 100000, description: 'events queued for one stream reader; a reader further behind is dropped with a gap event', default: 256 },
      },
    },
    outbox: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxRecords: { type: 'integer', minimum: 1, default: 1_000_000 },
        maxBytes: { type: 'integer', minimum: 4096, default: 1_073_741_824 },
        maxAgeHours: { type: 'number', minimum: 1, default: 720 },
        whenFull: { enum: ['reject-new'], default: 'reject-new' },
        replayBatch: { type: 'integer', minimum: 1, maximum: 10000, default: 64 },
        replayYieldAbove: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.5 },
        replayMaxYieldMs: { type: 'integer', minimum: 0, maximum: 600000, default: 5000 },
        replayWindow: { type: 'integer', minimum: 1, maximum: 256, description: 'records in flight toward the home system', default: 16 },
        replayMaxPerSecond: { type: 'number', exclusiveMinimum: 0, maximum: 100000, description: 'most records sent per second', default: 100 },
        replayStartJitterMs: { type: 'integer', minimum: 0, maximum: 3600000, description: 'after the link returns, wait a random 0..this before replaying', default: 10000 },
        replayBackoffBaseMs: { type: 'integer', minimum: 1, maximum: 600000, description: 'first backoff after a failed send (full jitter, doubling)', default: 500 },
        replayBackoffMaxMs: { type: 'integer', minimum: 1, maximum: 3600000, description: 'longest backoff', default: 60000 },
      },
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        retainDays: { type: 'integer', minimum: 365, default: 400 },
        maxBytes: { type: 'integer', minimum: 1048576, default: 2_147_483_648 },
        onFailure: { enum: ['refuse', 'continue'], description: 'when an audit record cannot be written: refuse answers that carry identity (default), or answer anyway', default: 'refuse' },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        apiKeys: { type: 'array', items: { type: 'string', minLength: 16 }, default: [] },
        maxFailedAttempts: { type: 'integer', minimum: 1, default: 5 },
        lockoutSeconds: { type: 'integer', minimum: 10, maximum: 86400, description: 'failure window and lockout length per client address', default: 900 },
        keyGraceSeconds: { type: 'integer', minimum: 0, maximum: 2592000, description: 'how long a HIS key replaced by POST /v1/admin/his-keys/rotate stays valid', default: 86400 },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['debug', 'info', 'warn', 'error'], default: 'info' },
        pii: { enum: ['mask', 'refuse'], description: 'refuse: throw on a clear identity reaching the logger (development)', default: 'mask' },
      },
    },
    webhooks: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'push each scan result to HIS URLs, signed, from a durable journal (src/webhook/)',
      properties: {
        targets: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'url', 'secret'],
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,32}$' },
              url: { type: 'string', pattern: '^https?://' },
              secret: { type: 'string', minLength: 16, description: 'shared secret of the HMAC-SM3 signature' },
              station: { type: 'string', minLength: 1, maxLength: 64, description: 'only this station\'s results (all when absent)' },
              timeoutMs: { type: 'integer', minimum: 100, maximum: 60000, default: 5000 },
            },
          },
        },
        maxQueued: { type: 'integer', minimum: 1, maximum: 10000000, default: 100_000 },
        retryMaxMs: { type: 'integer', minimum: 1000, maximum: 3600000, default: 60_000 },
      },
    },
    systemd: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { watchdog: { type: 'boolean', default: true } },
    },
  },
} as const;

/** The document as validated, every defaulted key filled in. */
type ConfigDocument = FromSchema<typeof configSchema>;
type UpstreamDocument = ConfigDocument['upstream'];

/**
 * The loaded config (frozen): the document with its defaults, plus what src/config/load.ts derives from
 * other keys (where the file lives, `upstream.crossDomainUrl` from `url`, `card.keyFile` under `stateDir`;
 * relative paths resolved against the file's folder).
 */
export type ApplianceConfig = Omit<ConfigDocument, '$schema' | 'upstream' | 'card'> & {
  /** absolute path of the file this came from */
  configPath: string;
  /** folder of configPath: relative paths in the file resolve against it */
  configDir: string;
  upstream: Omit<UpstreamDocument, 'crossDomainUrl' | 'dialect'> & { crossDomainUrl: string; dialect: DialectConfig };
  card: Omit<ConfigDocument['card'], 'keyFile'> & { keyFile: string };
};

/** One `scanners[]` entry. */
export type ScannerConfig = ApplianceConfig['scanners'][number];
/** Serial framing of one scanner; the drivers' DeviceOptions (drivers/types.ts) extend it. */
export type SerialFraming = Pick<ScannerConfig, 'baudRate' | 'dataBits' | 'parity' | 'stopBits' | 'suffix' | 'interCharTimeoutMs'>;
/** How verifications are routed (src/verify/verifier.ts). */
export type VerifyPolicy = ApplianceConfig['verify']['policy'];
