/**
 * SdfDevice: one SDF library, its device and a pool of sessions, with typed calls by key index.
 * Policy lives here, not in C: which key source a key index uses (internal index via the vendor's
 * key-handle function, or a wrapped key imported under the card's KEK), per-session key handles and
 * private-key access rights, quirk-table algorithm IDs. Every failure is an SdfError.
 */
import { accessSync, constants } from 'node:fs';
import { loadAddon, type NativeDeviceInfo, type NativeLibrary, type NativeSession } from './native.ts';
import { SessionPool, PoolClosedError } from './pool.ts';
import { quirksFor, type SdfQuirks } from './quirks.ts';
import { SdfError, toSdfError } from './sdr.ts';

export interface SdfDeviceOptions {
  /** path of the vendor's SDF shared library */
  library: string;
  /** sessions in the pool (default 8) */
  sessions?: number;
  /** a QUIRKS name or an entry */
  quirks?: string | SdfQuirks;
  /** private key access password (SDF_GetPrivateKeyAccessRight) for SM2 signing */
  keyPassword?: string;
  /** KEK index for wrapped keys */
  kek?: number;
  /** key index → that key wrapped under the KEK; indexes not listed are used by internal index */
  wrappedKeys?: ReadonlyMap<number, Uint8Array>;
}

export type SdfMode = 'ecb' | 'cbc';

export class SdfDevice {
  private readonly publicKeys = new Map<number, Promise<Buffer>>();
  private readonly rights = new WeakMap<NativeSession, Set<number>>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly lib: NativeLibrary,
    private readonly pool: SessionPool<NativeSession>,
    readonly quirks: SdfQuirks,
    private readonly options: SdfDeviceOptions,
  ) {}

  /** Load the library, open the device and the session pool. Throws SdfError. */
  static async open(options: SdfDeviceOptions): Promise<SdfDevice> {
    let quirks: SdfQuirks;
    try {
      quirks = typeof options.quirks === 'object' ? options.quirks : quirksFor(options.quirks);
    } catch (err) {
      throw new SdfError('EARG', 0, 'config', 'operation', (err as Error).message);
    }
    let addon;
    try {
      addon = loadAddon();
    } catch (err) {
      throw new SdfError('ELOAD', 0, 'addon', 'load', (err as Error).message, { cause: err });
    }
    // glibc hands back an already-loaded copy by name even when the file is gone: look first
    try {
      accessSync(options.library, constants.R_OK);
    } catch (err) {
      throw new SdfError('ELOAD', 0, 'dlopen', 'load', `cannot load ${options.library}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    let lib: NativeLibrary;
    try {
      lib = new addon.Library(options.library, { eccLen: quirks.eccLen, keyHandleSymbol: quirks.keyHandleSymbol });
    } catch (err) {
      throw toSdfError(err, 'dlopen');
    }
    try {
      await lib.openDevice();
    } catch (err) {
      throw toSdfError(err, 'SDF_OpenDevice');
    }
    const count = options.sessions ?? 8;
    const opened = await Promise.allSettled(Array.from({ length: count }, () => lib.openSession()));
    const sessions = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(sessions.map((s) => s.close()));
      await lib.closeDevice().catch(() => undefined);
      throw toSdfError(failed.reason, 'SDF_OpenSession');
    }
    return new SdfDevice(lib, new SessionPool(sessions), quirks, options);
  }

  get sessions(): number {
    return this.pool.size;
  }
  get symbols(): readonly string[] {
    return this.lib.symbols;
  }
  get closed(): boolean {
    return this.pool.closed;
  }

  private async run<T>(fn: string, body: (s: NativeSession) => Promise<T>): Promise<T> {
    try {
      return await this.pool.use(body);
    } catch (err) {
      if (err instanceof PoolClosedError) throw new SdfError('ECLOSED', 0, fn, 'closed', 'the SDF device is closed');
      throw toSdfError(err, fn);
    }
  }

  private async loadKey(s: NativeSession, index: number): Promise<void> {
    if (s.hasKey(index)) return;
    const wrapped = this.options.wrappedKeys?.get(index);
    if (wrapped) {
      if (this.options.kek === undefined) throw new SdfError('EARG', 0, 'SDF_ImportKeyWithKEK', 'operation', 'a wrapped key needs card.sdf.kek (the KEK index)');
      await s.keyWithKek(index, this.quirks.kekAlg, this.options.kek, wrapped);
    } else {
      await s.keyByIndex(index, index);
    }
  }

  private alg(mode: SdfMode): number {
    return mode === 'cbc' ? this.quirks.alg.sm4Cbc : this.quirks.alg.sm4Ecb;
  }

  /** SM4 on whole blocks with the key at `index`; `iv` for CBC. */
  encrypt(index: number, data: Uint8Array, mode: SdfMode = 'ecb', iv?: Uint8Array): Promise<Buffer> {
    return this.run('SDF_Encrypt', async (s) => {
      await this.loadKey(s, index);
      return s.encrypt(index, this.alg(mode), mode === 'cbc' ? Buffer.from(iv ?? []) : null, data);
    });
  }

  decrypt(index: number, data: Uint8Array, mode: SdfMode = 'ecb', iv?: Uint8Array): Promise<Buffer> {
    return this.run('SDF_Decrypt', async (s) => {
      await this.loadKey(s, index);
      return s.decrypt(index, this.alg(mode), mode === 'cbc' ? Buffer.from(iv ?? []) : null, data);
    });
  }

  /** SM3; with `za` the card prefixes ZA of that public key (X‖Y) and user ID (GB/T 32918). */
  hash(data: Uint8Array, za?: { publicKeyXY: Uint8Array; id: Uint8Array }): Promise<Buffer> {
    return this.run('SDF_HashInit', (s) => s.hash(this.quirks.alg.sm3, data, za?.publicKeyXY ?? null, za?.id ?? null));
  }

  random(length: number): Promise<Buffer> {
    return this.run('SDF_GenerateRandom', (s) => s.random(length));
  }

  deviceInfo(): Promise<NativeDeviceInfo> {
    return this.run('SDF_GetDeviceInfo', (s) => s.deviceInfo());
  }

  /** The SM2 sign public key at `index`, X‖Y (64 bytes). Cached: it cannot change under us. */
  publicKey(index: number): Promise<Buffer> {
    let p = this.publicKeys.get(index);
    if (!p) {
      p = this.run('SDF_ExportSignPublicKey_ECC', (s) => s.exportSignPublicKey(index));
      this.publicKeys.set(index, p);
      p.catch(() => this.publicKeys.delete(index));
    }
    return p;
  }

  private async accessRight(s: NativeSession, index: number): Promise<void> {
    if (this.options.keyPassword === undefined) return;
    let granted = this.rights.get(s);
    if (!granted) this.rights.set(s, (granted = new Set()));
    if (granted.has(index)) return;
    await s.accessRight(index, Buffer.from(this.options.keyPassword, 'utf8'));
    granted.add(index);
  }

  /** SM2 internal sign of the digest e; r‖s (64 bytes). */
  sign(index: number, digest: Uint8Array): Promise<Buffer> {
    return this.run('SDF_InternalSign_ECC', async (s) => {
      await this.accessRight(s, index);
      return s.internalSign(index, digest);
    });
  }

  verify(index: number, digest: Uint8Array, rs: Uint8Array): Promise<boolean> {
    return this.run('SDF_InternalVerify_ECC', (s) => s.internalVerify(index, digest, rs));
  }

  /**
   * Stop accepting calls, let the accepted ones finish, then close sessions and the device.
   * Best effort on a device that is gone: errors while closing are swallowed (there is nothing to save).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const sessions = await this.pool.close();
      await Promise.allSettled(sessions.map((s) => s.close()));
      await this.lib.closeDevice().catch(() => undefined);
    })();
    return this.closing;
  }
}
