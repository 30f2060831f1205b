/**
 * A card system the simulator stands in for: its EHCIN and its EHCID/validity SM4 keys. It issues and
 * reads codes with the SAME default code profile as the appliance's crypto card (src/crypto/profile.ts),
 * so a code issued here verifies on the appliance's SoftCard when the keys are shared (the "local" card
 * system reads them from the appliance's key file) and only upstream when they are not ("foreign").
 * Around its SM4 (node:crypto, its own keys) the fields are the card's own (src/crypto/code-fields.ts).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EhcError } from '../../src/errors.ts';
import { defaultProfile, type CodeProfile } from '../../src/crypto/profile.ts';
import { codeFields, fieldHex, type CodeFields } from '../../src/crypto/code-fields.ts';
import type { Identity } from '../../src/crypto/card.ts';

export interface CardSystemKeys {
  /** 32 hex digits each */
  ehcid: string;
  validity: string;
}

export interface CardSystemSpec {
  ehcin: string;
  name?: string;
  /** hex keys; or keyFile: a SoftCard key file (JSON with `ehcid` and `validity` hex) */
  keys?: CardSystemKeys;
  keyFile?: string;
}

export interface DecodedCode {
  ehcid: string;
  tag: '0' | '1';
  valid: string;
  ehcappid: string;
  ehcin: string;
}

const HEX32 = /^[0-9a-fA-F]{32}$/;

/** Fixed keys derived from a label: the same foreign card system on every run (demo only). */
export function deterministicKeys(label: string): CardSystemKeys {
  const h = createHash('sm3').update(`ehc-edge simulator keys\0${label}`).digest('hex');
  return { ehcid: h.slice(0, 32), validity: h.slice(32, 64) };
}

/** Split a QR payload: `EHCID:TAG:VALID:EHCAPPID` or `EHCID:TAG:VALID:EXT:EHCAPPID`. 2002 otherwise. */
export function splitCode(code: string): DecodedCode {
  const f = code.trim().split(':');
  if (f.length !== 4 && f.length !== 5) throw new EhcError('2002', 'code must have 4 or 5 fields');
  const [ehcid, tag, valid] = f as [string, string, string];
  const ehcappid = f[f.length - 1]!;
  if (!/^(?:[0-9A-Fa-f]{32})+$/.test(ehcid)) throw new EhcError('2002', 'EHCID is not hex in whole blocks');
  if (tag !== '0' && tag !== '1') throw new EhcError('2002', 'TAG must be 0 or 1');
  if (ehcappid.length < 9) throw new EhcError('2002', 'EHCAPPID too short');
  return { ehcid, tag, valid, ehcappid, ehcin: ehcappid.slice(0, 9).toUpperCase() };
}

export class SimCardSystem {
  readonly ehcin: string;
  readonly name: string;
  private readonly ehcidKey: Buffer;
  private readonly validityKey: Buffer;
  private readonly fields: CodeFields;

  constructor(spec: CardSystemSpec, profile: CodeProfile = defaultProfile) {
    this.fields = codeFields(profile);
    this.ehcin = spec.ehcin.toUpperCase();
    this.name = spec.name ?? `模拟卡管系统 ${this.ehcin}`;
    let keys = spec.keys;
    if (!keys && spec.keyFile) {
      let doc: Partial<CardSystemKeys>;
      try {
        doc = JSON.parse(readFileSync(spec.keyFile, 'utf8')) as Partial<CardSystemKeys>;
      } catch (err) {
        throw new Error(`cannot read the card key file ${spec.keyFile}: ${(err as Error).message}`);
      }
      keys = { ehcid: String(doc.ehcid ?? ''), validity: String(doc.validity ?? '') };
    }
    keys ??= deterministicKeys(this.ehcin);
    if (!HEX32.test(keys.ehcid) || !HEX32.test(keys.validity)) throw new Error(`card system ${this.ehcin} keys must be 32 hex digits`);
    this.ehcidKey = Buffer.from(keys.ehcid, 'hex');
    this.validityKey = Buffer.from(keys.validity, 'hex');
  }

  private sm4(op: 'enc' | 'dec', key: Buffer, data: Buffer): Buffer {
    const c = op === 'enc' ? createCipheriv('sm4-ecb', key, null) : createDecipheriv('sm4-ecb', key, null);
    c.setAutoPadding(false);
    return Buffer.concat([c.update(data), c.final()]);
  }

  issueEhcid(identity: Identity): string {
    return fieldHex(this.sm4('enc', this.ehcidKey, this.fields.ehcid.plain(identity)));
  }

  issueValidity(expiresAt: Date): string {
    return fieldHex(this.sm4('enc', this.validityKey, this.fields.validity.plain(expiresAt)));
  }

  /** A QR payload for a person: dynamic (TAG 0, with VALID) unless `static: true`. */
  issueCode(identity: Identity, opts: { expiresAt?: Date; static?: boolean; channel?: string } = {}): string {
    const ehcappid = `${this.ehcin}${opts.channel ?? 'APPA0001'}`;
    const ehcid = this.issueEhcid(identity);
    if (opts.static) return `${ehcid}:1::${ehcappid}`;
    const expiresAt = opts.expiresAt ?? new Date(Date.now() + 5 * 60_000);
    return `${ehcid}:0:${this.issueValidity(expiresAt)}:${ehcappid}`;
  }

  decryptEhcid(ehcid: string): Identity {
    const f = this.fields.ehcid;
    return f.value(this.sm4('dec', this.ehcidKey, f.cipher(ehcid)));
  }

  decryptValidity(valid: string): Date {
    const f = this.fields.validity;
    return f.value(this.sm4('dec', this.validityKey, f.cipher(valid)));
  }
}
