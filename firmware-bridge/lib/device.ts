/**
 * SdfDevice: one SDF library, its device and a pool of sessions, with typed calls by key index.
 * Policy lives here, not in C: how a symmetric key reaches a session (its KeySource), per-session key
 * handles and private-key access rights, quirk-table algorithm IDs. Every failure is an SdfError.
 *
 * GM/T 0018 has no call that turns a stored symmetric key into a session handle, so by default a key
 * comes in one of the standard's two ways, into every session: the digital envelope
 * (SDF_ImportKeyWithISK_ECC: the key SM2-encrypted to the card's encryption key) or a blob wrapped
 * under the card's KEK (SDF_ImportKeyWithKEK; a blob the card made with SDF_GenerateKeyWithKEK, or one a
 * card system wrapped). Keys by internal index need a vendor extension named by the quirk table.
 */
import { accessSync, constants } from 'node:fs';
import { loadAddon, type NativeDeviceInfo, type NativeLibrary, type NativeSession } from './native.ts';
import { SessionPool, PoolClosedError } from './pool.ts';
import { quirksFor, type SdfQuirks } from './quirks.ts';
import { SdfError, toSdfError } from './sdr.ts';

/** How one symmetric key reaches a session. */
export type KeySource =
  | {
      kind: 'envelope';
      /** index of the card's SM2 encryption key pair the envelope is encrypted to */
      isk: number;
      /** the SM2 ciphertext C1 (x ‖ y, 64 bytes) ‖ C3 (32) ‖ C2 (the key, encrypted) */
      cipher: Uint8Array;
    }
  | {
      kind: 'kek';
      /** index of the key-encryption key in the card */
      kek: number;
      /** the wrap algorithm the blob was made with (the standard leaves it to the card) */
      alg: WrapAlg;
      /** the wrapped key, as long as the card made it (ECB: 16 bytes; CBC: IV ‖ padded key, 48) */
      blob: Uint8Array;
    }
  | { kind: 'index' };

export type WrapAlg = 'sm4-ecb' | 'sm4-cbc';

/** A slot that no key index uses: provisioning work (generate, try an envelope) lands here. */
const SCRATCH_SLOT = 0xffffffff;

export interface SdfDeviceOptions {
  /** path of the vendor's SDF shared library */
  library: string;
  /** sessions in the pool (default 8) */
  sessions?: number;
  /** a QUIRKS name or an entry */
  quirks?: string | SdfQuirks;
  /** private key access password (SDF_GetPrivateKeyAccessRight) for SM2 signing */
  keyPassword?: string;
  /**
   * key index → how that key reaches a session. An index not listed is taken by internal index when
   * the quirk names a key-handle extension, and refused otherwise.
   */
  keys?: ReadonlyMap<number, KeySource>;
  /** names for key indexes in messages (`ehcid`, …) */
  labels?: ReadonlyMap<number, string>;
  /** load every listed key into every session at open, so a missing key fails the open, not a call */
  preload?: boolean;
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
      lib = new addon.Library(options.library, { eccLen: quirks.eccLen, ...(quirks.keyHandleSymbol ? { keyHandleSymbol: quirks.keyHandleSymbol } : {}) });
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
    const device = new SdfDevice(lib, new SessionPool(sessions), quirks, options);
    if (options.preload && options.keys?.size) {
      try {
        await Promise.all(sessions.map(async (s) => {
          for (const index of options.keys!.keys()) await device.loadKey(s, index);
        }));
      } catch (err) {
        await device.close();
        throw err;
      }
    }
    return device;
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

  private label(index: number): string {
    const name = this.options.labels?.get(index);
    return name ? `key ${name} (index ${index})` : `key index ${index}`;
  }

  private wrapAlg(alg: WrapAlg): number {
    return alg === 'sm4-cbc' ? this.quirks.alg.sm4Cbc : this.quirks.alg.sm4Ecb;
  }

  private async importKey(s: NativeSession, slot: number, source: KeySource, index: number): Promise<void> {
    switch (source.kind) {
      case 'envelope': {
        const c = source.cipher;
        if (c.length < 97) throw new SdfError('EARG', 0, 'SDF_ImportKeyWithISK_ECC', 'operation', `${this.label(index)}: an envelope is C1 (64 bytes) ‖ C3 (32) ‖ C2, got ${c.length} bytes`);
        await this.accessRight(s, source.isk);
        await s.keyWithIsk(slot, source.isk, c.subarray(0, 32), c.subarray(32, 64), c.subarray(64, 96), c.subarray(96));
        return;
      }
      case 'kek':
        await s.keyWithKek(slot, this.wrapAlg(source.alg), source.kek, source.blob);
        return;
      case 'index':
        await s.keyByIndex(slot, index);
    }
  }

  private source(index: number): KeySource {
    const source = this.options.keys?.get(index);
    if (source) return source;
    if (this.quirks.keyHandleSymbol) return { kind: 'index' };
    throw new SdfError('ENOKEY', 0, 'config', 'operation', `${this.label(index)} has no source in the config: give it as an envelope (card.sdf.envelopes) or a KEK-wrapped blob (card.sdf.wrappedKeys); keys by internal index need a vendor extension (card.sdf.quirks "${this.quirks.name}" has none)`);
  }

  private async loadKey(s: NativeSession, index: number): Promise<void> {
    if (s.hasKey(index)) return;
    try {
      await this.importKey(s, index, this.source(index), index);
    } catch (err) {
      const e = toSdfError(err, 'SDF_ImportKeyWithKEK');
      if (e.message.startsWith('key ')) throw e;
      throw new SdfError(e.sdr, e.code, e.fn, e.kind, `${this.label(index)}: ${e.message}`, { cause: e });
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

  /** The SM2 encryption public key at `index`, X‖Y: what a card system encrypts envelopes to. */
  encPublicKey(index: number): Promise<Buffer> {
    return this.run('SDF_ExportEncPublicKey_ECC', (s) => s.exportEncPublicKey(index));
  }

  /**
   * SDF_GenerateKeyWithKEK: a new 128-bit key made in the card; resolves with it wrapped under the KEK
   * (the blob the config keeps) and its check value SM4-ECB(key, 0¹²⁸), computed in the card.
   */
  generateWrapped(kek: number, alg: WrapAlg, maxBlob = 512): Promise<{ blob: Buffer; kcv: Buffer }> {
    return this.run('SDF_GenerateKeyWithKEK', async (s) => {
      const blob = await s.generateKeyWithKek(SCRATCH_SLOT, 128, this.wrapAlg(alg), kek, maxBlob);
      const kcv = await s.encrypt(SCRATCH_SLOT, this.quirks.alg.sm4Ecb, null, Buffer.alloc(16));
      return { blob, kcv };
    });
  }

  /** Imports a key from `source` into a scratch slot and resolves with its check value SM4-ECB(key, 0¹²⁸). */
  checkValue(source: KeySource): Promise<Buffer> {
    return this.run('SDF_Encrypt', async (s) => {
      await this.importKey(s, SCRATCH_SLOT, source, SCRATCH_SLOT);
      return s.encrypt(SCRATCH_SLOT, this.quirks.alg.sm4Ecb, null, Buffer.alloc(16));
    });
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
