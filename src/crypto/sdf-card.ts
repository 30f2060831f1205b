/**
 * SdfCard: the PCI-E crypto card through firmware-bridge (a GM/T 0018 SDF library loaded at run time).
 *
 * Status, not crashes: opening never throws for a card problem — an unloadable library, a missing
 * symbol, an absent device leave the card DOWN with a clear `health().detail`; calls then fail with
 * EhcError 8008 and the card retries the device at most every `retryMs`. A device that fails mid-run
 * (SDR_COMMFAIL, SDR_HARDFAIL …) is closed and reopened the same way.
 *
 * Keys: the symmetric keys come into every session the standard's way (card.sdf.envelopes →
 * SDF_ImportKeyWithISK_ECC, card.sdf.wrappedKeys → SDF_ImportKeyWithKEK) and are all loaded when the
 * device opens, so a key that is missing or wrong leaves the card DOWN with the reason, not a call
 * failing later.
 *
 * Errors are mapped once, here, by function and SDR code:
 *  - 8008 加密服务失败: the card service itself is broken or misconfigured — library, device, session,
 *    closed; any failure of a key-loading function (a refused envelope or blob is a configuration
 *    problem, whatever code the vendor picked); key not in the card, access denied, algorithm not
 *    supported.
 *  - 2005 加密服务失败: a data function (SDF_Encrypt, SDF_Decrypt, SDF_Hash*, SDF_Internal*_ECC) worked
 *    but refused this input (SDR_INARGERR, SDR_SYMOPERR …).
 * The message keeps the SDR name, code and function (SdfError is the cause).
 */
import { createHmac } from 'node:crypto';
import { SdfDevice, SdfError, toSdfError, type KeySource, type NativeDeviceInfo } from '../../firmware-bridge/index.ts';
import { EhcError } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import { SDF_DEFAULTS, type ApplianceConfig } from '../config/schema.ts';
import type { CardHealth, CardPrimitives, KeyIndex, KeyMap, Sm4Mode } from './card.ts';
import { MAC_KEY_LABEL } from './mac-key.ts';
import { derToRs, rsToDer } from './sm2-der.ts';

type SdfDocument = NonNullable<ApplianceConfig['card']['sdf']>;
type Defaulted = keyof typeof SDF_DEFAULTS;
/** `card.sdf` as a loaded config has it, or as tests and tools build it: the defaulted keys may be left out. */
export type SdfConfig = Omit<SdfDocument, Defaulted> & Partial<Pick<SdfDocument, Defaulted>>;
/** `card.sdf` with every default of the schema's SDF_DEFAULTS filled in. */
export type SdfSettings = SdfDocument & Required<Pick<SdfDocument, Defaulted>>;
export function withSdfDefaults(cfg: SdfConfig): SdfSettings {
  const out = { ...cfg } as Record<string, unknown>;
  for (const [k, v] of Object.entries(SDF_DEFAULTS)) out[k] ??= v;
  return out as SdfSettings;
}
export const SM2_USER_ID = Buffer.from('1234567812345678', 'ascii');

/** SDR codes that mean the service is misconfigured (operator must act), not that this input was bad. */
const CONFIG_CODES = new Set(['SDR_KEYNOTEXIST', 'SDR_PARDENY', 'SDR_ALGNOTSUPPORT', 'SDR_ALGMODNOTSUPPORT', 'SDR_NOTSUPPORT', 'SDR_KEYTYPEERR', 'SDR_PRKRERR']);
/** Functions that bring keys or rights into a session: their failure is configuration, whatever the code. */
const KEY_FUNCTIONS = new Set([
  'SDF_ImportKeyWithKEK',
  'SDF_ImportKeyWithISK_ECC',
  'SDF_GenerateKeyWithKEK',
  'SDF_GetSymmKeyHandle',
  'SDF_GetPrivateKeyAccessRight',
  'SDF_ExportSignPublicKey_ECC',
  'SDF_ExportEncPublicKey_ECC',
  'config',
]);
/** Functions that work on the caller's data: an input refusal here is 2005. */
const DATA_FUNCTIONS = new Set(['SDF_Encrypt', 'SDF_Decrypt', 'SDF_HashInit', 'SDF_HashUpdate', 'SDF_HashFinal', 'SDF_InternalSign_ECC', 'SDF_InternalVerify_ECC', 'SDF_GenerateRandom']);
const SYMMETRIC_ROLES = ['ehcid', 'validity', 'storage', 'mac'] as const;

/** An envelope in config: C1 as x‖y or 04‖x‖y, then C3, then C2. Odd byte counts carry the 04. */
export function parseEnvelope(hex: string): Buffer {
  const b = Buffer.from(hex, 'hex');
  return b.length % 2 === 1 && b[0] === 0x04 ? b.subarray(1) : b;
}

/** The key sources the config gives, by key index (envelope first, then a KEK-wrapped blob). */
export function keySources(cfg: SdfConfig, keys: KeyMap): Map<number, KeySource> {
  const out = new Map<number, KeySource>();
  for (const role of SYMMETRIC_ROLES) {
    const env = cfg.envelopes?.[role];
    const blob = cfg.wrappedKeys?.[role];
    if (env) {
      if (!/^(?:[0-9a-fA-F]{2}){112,}$/.test(env)) throw new EhcError('8008', `card.sdf.envelopes.${role} must be hex: the SM2 ciphertext C1 ‖ C3 ‖ C2 of the key`);
      out.set(keys[role], { kind: 'envelope', isk: cfg.isk ?? keys.sign, cipher: parseEnvelope(env) });
    } else if (blob) {
      if (!/^(?:[0-9a-fA-F]{2}){16,}$/.test(blob)) throw new EhcError('8008', `card.sdf.wrappedKeys.${role} must be hex digits (the key blob wrapped under the KEK, 16 bytes or more)`);
      if (cfg.kek === undefined) throw new EhcError('8008', 'card.sdf.wrappedKeys needs card.sdf.kek (the KEK index in the card)');
      out.set(keys[role], { kind: 'kek', kek: cfg.kek, alg: cfg.kekAlg ?? SDF_DEFAULTS.kekAlg, blob: Buffer.from(blob, 'hex') });
    }
  }
  return out;
}

export interface SdfCardOptions {
  /** minimum time between attempts to (re)open a failed device; default card.sdf.retryMs */
  retryMs?: number;
  /** longest a card call may take, queueing included; default card.sdf.timeoutMs */
  timeoutMs?: number;
}

export class SdfCard implements CardPrimitives {
  readonly driver = 'sdf';
  private device: SdfDevice | undefined;
  private connecting: Promise<SdfDevice> | undefined;
  private lastAttempt = 0;
  private detail = 'not opened';
  private info: NativeDeviceInfo | undefined;
  private closed = false;
  /** the close of a failed device: a reopen waits for it (vendor libraries may allow one open device) */
  private retiring: Promise<void> = Promise.resolve();
  private readonly macKeys = new Map<KeyIndex, Promise<Buffer>>();
  private readonly sources: Map<number, KeySource>;
  private readonly labels: Map<number, string>;
  private readonly retryMs: number;
  private readonly timeoutMs: number;

  private readonly cfg: SdfSettings;

  private constructor(
    cfg: SdfConfig,
    readonly keys: KeyMap,
    private readonly log: Logger,
    options: SdfCardOptions,
  ) {
    this.cfg = withSdfDefaults(cfg);
    this.retryMs = options.retryMs ?? this.cfg.retryMs;
    this.timeoutMs = options.timeoutMs ?? this.cfg.timeoutMs;
    this.sources = keySources(this.cfg, keys);
    this.labels = new Map(SYMMETRIC_ROLES.map((r) => [keys[r], r]));
  }

  /** Never throws for a card problem: check health(). Throws EhcError 8008 only for bad config. */
  static async open(cfg: SdfConfig, keys: KeyMap, log: Logger, options: SdfCardOptions = {}): Promise<SdfCard> {
    const card = new SdfCard(cfg, keys, log.child({ component: 'sdf-card' }), options);
    const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    if (card.cfg.sessions >= pool) {
      // card calls run on the libuv pool: a slow card with as many sessions as threads would stall fs/dns work
      card.log.warn('card.sdf.sessions is not below the libuv threadpool size; set UV_THREADPOOL_SIZE to sessions + 4', { sessions: card.cfg.sessions, uvThreadpool: pool });
    }
    await card.connect().catch(() => undefined);
    return card;
  }

  private connect(): Promise<SdfDevice> {
    this.connecting ??= (async () => {
      this.lastAttempt = Date.now();
      try {
        await this.retiring;
        const device = await SdfDevice.open({
          library: this.cfg.library,
          sessions: this.cfg.sessions,
          quirks: this.cfg.quirks,
          keyPassword: this.cfg.keyPassword,
          keys: this.sources,
          labels: this.labels,
          preload: true,
        });
        try {
          this.info = await device.deviceInfo();
        } catch (err) {
          await device.close();
          throw err;
        }
        if (this.closed) {
          await device.close();
          throw new SdfError('ECLOSED', 0, 'open', 'closed', 'card closed while opening');
        }
        this.device = device;
        this.detail = 'ready';
        this.log.info('crypto card ready', { library: this.cfg.library, device: this.info.name, serial: this.info.serial, sessions: device.sessions, quirks: device.quirks.name });
        return device;
      } catch (err) {
        const e = toSdfError(err, 'open');
        this.detail = describe(e);
        this.log.error('crypto card unavailable', { library: this.cfg.library, detail: this.detail, sdr: e.sdr, fn: e.fn });
        throw new EhcError('8008', `crypto card unavailable: ${this.detail}`, { cause: e });
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private async dev(): Promise<SdfDevice> {
    if (this.closed) throw new EhcError('8008', 'crypto card is closed');
    if (this.device) return this.device;
    if (this.connecting) return this.connecting;
    if (Date.now() - this.lastAttempt < this.retryMs) throw new EhcError('8008', `crypto card unavailable: ${this.detail}`);
    return this.connect();
  }

  /**
   * Run a body on the device. With the device up, the body enters the session pool synchronously, so
   * a call made before close() is accepted and finishes before the device closes. A card that does
   * not answer within timeoutMs (queueing included) is treated as failed: 8008, down, reopened later.
   */
  private call<T>(body: (d: SdfDevice) => Promise<T>): Promise<T> {
    const run = (d: SdfDevice) => this.bounded(body(d)).catch((err: unknown) => Promise.reject(this.fail(err, d)));
    if (!this.closed && this.device) return run(this.device);
    return this.dev().then(run);
  }

  private bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SdfError('ETIMEDOUT', 0, 'card call', 'device', `the card did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  }

  /** Map a failure once; a device-level failure takes the device down for a later reopen. */
  private fail(err: unknown, d: SdfDevice): EhcError {
    if (err instanceof EhcError) return err;
    const e = toSdfError(err);
    if (e.kind === 'device' || e.kind === 'load') {
      if (this.device === d) {
        this.device = undefined;
        this.lastAttempt = Date.now();
        this.detail = `device failed: ${e.message}`;
        this.log.error('crypto card failed; will reopen', { sdr: e.sdr, code: e.code, fn: e.fn, retryMs: this.retryMs });
        // a hung call keeps its session: do not wait for it longer than a call may take
        this.retiring = Promise.race([d.close().catch(() => undefined), new Promise<void>((r) => setTimeout(r, this.timeoutMs).unref())]);
      }
      return new EhcError('8008', `crypto card failed: ${e.message}`, { cause: e });
    }
    if (e.kind === 'operation' && DATA_FUNCTIONS.has(e.fn) && !KEY_FUNCTIONS.has(e.fn) && !CONFIG_CODES.has(e.sdr) && e.sdr.startsWith('SDR_')) {
      return new EhcError('2005', `crypto card refused the operation: ${e.message}`, { cause: e });
    }
    if (e.kind === 'closed' && !this.closed) return new EhcError('8008', `crypto card failed: device was reset during the call (${e.fn})`, { cause: e });
    return new EhcError('8008', `crypto card service failed: ${e.message}`, { cause: e });
  }

  private checkBlocks(data: Uint8Array, mode: Sm4Mode, iv?: Uint8Array): void {
    if (data.length === 0 || data.length % 16 !== 0) throw new EhcError('8008', `SM4 works on whole 16-byte blocks (got ${data.length} bytes)`);
    if (mode === 'cbc' && (!iv || iv.length !== 16)) throw new EhcError('8008', 'SM4-CBC needs a 16-byte IV');
  }

  async sm4Encrypt(key: KeyIndex, data: Uint8Array, mode: Sm4Mode = 'ecb', iv?: Uint8Array): Promise<Buffer> {
    this.checkBlocks(data, mode, iv);
    return this.call((d) => d.encrypt(key, data, mode, iv));
  }

  async sm4Decrypt(key: KeyIndex, data: Uint8Array, mode: Sm4Mode = 'ecb', iv?: Uint8Array): Promise<Buffer> {
    this.checkBlocks(data, mode, iv);
    return this.call((d) => d.decrypt(key, data, mode, iv));
  }

  async sm3(data: Uint8Array): Promise<Buffer> {
    return this.call((d) => d.hash(data));
  }

  /** HMAC-SM3 under a key derived in the card from the mac key (see mac-key.ts). */
  async hmacSm3(key: KeyIndex, data: Uint8Array): Promise<Buffer> {
    let k = this.macKeys.get(key);
    if (!k) {
      k = this.sm4Encrypt(key, MAC_KEY_LABEL, 'ecb');
      this.macKeys.set(key, k);
      k.catch(() => this.macKeys.delete(key));
    }
    return createHmac('sm3', await k).update(data).digest();
  }

  async random(length: number): Promise<Buffer> {
    if (!Number.isInteger(length) || length < 0 || length > 65536) throw new EhcError('8008', 'random: length must be 0..65536');
    if (length === 0) return Buffer.alloc(0);
    return this.call((d) => d.random(length));
  }

  /** e = SM3(ZA ‖ M) computed by the card for the key's public key and the default user ID. */
  private async digest(d: SdfDevice, key: KeyIndex, message: Uint8Array): Promise<Buffer> {
    const pub = await d.publicKey(key);
    return d.hash(message, { publicKeyXY: pub, id: SM2_USER_ID });
  }

  async sm2Sign(key: KeyIndex, message: Uint8Array): Promise<Buffer> {
    return this.call(async (d) => rsToDer(await d.sign(key, await this.digest(d, key, message))));
  }

  async sm2Verify(key: KeyIndex, message: Uint8Array, derSignature: Uint8Array): Promise<boolean> {
    const rs = derToRs(derSignature);
    if (!rs) return false;
    return this.call(async (d) => d.verify(key, await this.digest(d, key, message), rs));
  }

  async sm2PublicKey(key: KeyIndex): Promise<Buffer> {
    return this.call(async (d) => Buffer.concat([Buffer.from([0x04]), await d.publicKey(key)]));
  }

  /** Live: probes the device (SDF_GetDeviceInfo); a down card is retried here too. */
  async health(): Promise<CardHealth> {
    const base = { driver: this.driver };
    if (this.closed) return { ...base, ok: false, detail: 'closed' };
    try {
      this.info = await this.call((d) => d.deviceInfo());
    } catch {
      /* detail says why */
    }
    const ok = this.device !== undefined;
    const device: Record<string, string | number> = { library: this.cfg.library, quirks: this.cfg.quirks, sessions: this.cfg.sessions };
    if (this.info) Object.assign(device, { name: this.info.name, serial: this.info.serial, issuer: this.info.issuer, standardVersion: this.info.standardVersion });
    return { ...base, ok, detail: ok ? 'ready' : this.detail, device };
  }

  /** Safe with calls in flight: they finish first, then sessions and the device close. */
  async close(): Promise<void> {
    this.closed = true;
    const d = this.device ?? (await this.connecting?.catch(() => undefined));
    this.device = undefined;
    await d?.close();
  }
}

function describe(e: SdfError): string {
  switch (e.kind) {
    case 'load':
      return `library not loadable: ${e.message}`;
    case 'symbol':
      return `library is not a usable SDF library: ${e.message}`;
    case 'device':
      return e.sdr === 'SDR_OPENDEVICE' ? `device absent or not openable (${e.fn}: ${e.sdr})` : `device error: ${e.message}`;
    default:
      return e.message.startsWith('key ') ? `keys not loadable: ${e.message}` : e.message;
  }
}
