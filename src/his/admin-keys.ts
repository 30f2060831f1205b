/**
 * HIS key rotation (`POST /v1/admin/his-keys/rotate`): the HIS port's effective key list is the config's
 * `his.apiKeys` plus keys made by rotation, minus keys whose retirement time has passed.
 *
 * Rotating key X makes a new random key N: N is answered once (to the admin who asked) and only its
 * `sm3:` digest is kept; X stays valid for `admin.keyGraceSeconds` (default 1 day) so the HIS can switch
 * over, then it is refused — also when X is written in the config file in clear (remove it there at the
 * next edit). The state is one small document, `<stateDir>/his-keys.json` (mode 0600, durable write),
 * that holds digests and times only, never a key.
 *
 * A key's id is the first 8 hex digits of its SM3 digest (the `key_tag` the audit trail shows of a
 * presented key): enough to name it, useless to call with.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { replaceFileDurably } from '../platform/durable-write.ts';
import { entryDigestHex as digestOf, sm3Hex } from './auth.ts';

interface AddedKey {
  id: string;
  sm3: string;
  createdAt: string;
  /** the key it replaced */
  replaces?: string;
}

interface Retirement {
  id: string;
  sm3: string;
  /** ISO time from which the key is refused */
  at: string;
}

interface KeyRingDoc {
  version: 1;
  added: AddedKey[];
  retired: Retirement[];
}

export interface HisKeyInfo {
  key_id: string;
  source: 'config' | 'rotation';
  created_at?: string;
  /** refused from this time (grace of a rotated-away key) */
  valid_until?: string;
}

export interface Rotation {
  key: string;
  key_id: string;
  replaced_key_id: string;
  replaced_valid_until: string;
}

export class HisKeyRing {
  private base: readonly string[];
  private doc: KeyRingDoc;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    base: readonly string[],
    private readonly apply: (keys: readonly string[]) => void,
    private readonly graceMs: number,
    private readonly clock: () => number,
  ) {
    this.base = base;
    this.doc = HisKeyRing.read(file);
  }

  /** Opens the ring of a state folder and applies the effective list at once. */
  static open(o: { stateDir: string; configKeys: readonly string[]; apply: (keys: readonly string[]) => void; graceSeconds: number; clock?: () => number }): HisKeyRing {
    const ring = new HisKeyRing(path.join(o.stateDir, 'his-keys.json'), o.configKeys, o.apply, o.graceSeconds * 1000, o.clock ?? Date.now);
    ring.refresh();
    return ring;
  }

  private static read(file: string): KeyRingDoc {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, added: [], retired: [] };
      throw err;
    }
    const doc = JSON.parse(text) as KeyRingDoc;
    return { version: 1, added: doc.added ?? [], retired: doc.retired ?? [] };
  }

  /** A config reload changed `his.apiKeys`. */
  setConfigKeys(keys: readonly string[]): void {
    this.base = keys;
    this.refresh();
  }

  /** The entries the HIS port accepts now (`key` or `sm3:<hex>`). */
  effective(): string[] {
    const now = this.clock();
    const gone = new Set(this.doc.retired.filter((r) => Date.parse(r.at) <= now).map((r) => r.sm3));
    return [...this.base.filter((k) => !gone.has(digestOf(k))), ...this.doc.added.filter((a) => !gone.has(a.sm3)).map((a) => `sm3:${a.sm3}`)];
  }

  list(): HisKeyInfo[] {
    const now = this.clock();
    const until = new Map(this.doc.retired.map((r) => [r.sm3, r.at]));
    const info = (digest: string, source: HisKeyInfo['source'], createdAt?: string): HisKeyInfo => ({
      key_id: digest.slice(0, 8),
      source,
      ...(createdAt ? { created_at: createdAt } : {}),
      ...(until.has(digest) ? { valid_until: until.get(digest)! } : {}),
    });
    const all = [...this.base.map((k) => info(digestOf(k), 'config')), ...this.doc.added.map((a) => info(a.sm3, 'rotation', a.createdAt))];
    return all.filter((k) => !k.valid_until || Date.parse(k.valid_until) > now);
  }

  /** Replace the key with id `keyId` by a new one; undefined when no accepted key has that id. */
  async rotate(keyId: string): Promise<Rotation | undefined> {
    const id = keyId.toLowerCase();
    const old = this.effective().map(digestOf).find((d) => d.slice(0, 8) === id);
    if (!old) return undefined;
    const now = this.clock();
    const key = `ehc-his-${randomBytes(24).toString('base64url')}`;
    const sm3 = sm3Hex(key);
    const until = new Date(now + this.graceMs).toISOString();
    const earlier = this.doc.retired.find((r) => r.sm3 === old);
    const doc: KeyRingDoc = {
      version: 1,
      added: [...this.doc.added, { id: sm3.slice(0, 8), sm3, createdAt: new Date(now).toISOString(), replaces: id }],
      // a key already retiring keeps its earlier end
      retired: earlier ? this.doc.retired : [...this.doc.retired, { id, sm3: old, at: until }],
    };
    await this.save(doc);
    return { key, key_id: sm3.slice(0, 8), replaced_key_id: id, replaced_valid_until: earlier?.at ?? until };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async save(doc: KeyRingDoc): Promise<void> {
    const run = this.writing.then(() => replaceFileDurably(this.file, JSON.stringify(doc, null, 2) + '\n'));
    this.writing = run.catch(() => {});
    await run;
    this.doc = doc;
    this.refresh();
  }

  /** Apply the effective list; wake up at the next retirement to apply it again. */
  private refresh(): void {
    this.apply(this.effective());
    if (this.timer) clearTimeout(this.timer);
    const now = this.clock();
    const next = Math.min(...this.doc.retired.map((r) => Date.parse(r.at)).filter((t) => t > now));
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => this.refresh(), Math.min(next - now + 5, 2 ** 31 - 1));
      this.timer.unref();
    }
  }
}
