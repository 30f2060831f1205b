import path from 'node:path';
import { DEFAULT_KEY_INDEXES, type CryptoCard } from '../../src/crypto/card.ts';
import { ProfiledCard } from '../../src/crypto/profiled-card.ts';
import { SoftCard } from '../../src/crypto/soft-card.ts';
import { EhcError } from '../../src/errors.ts';
import type { Upstream, UpstreamIdentity, UpstreamMethod, VerifyBiz } from '../../src/protocol/upstream.ts';
import type { OutboxEntry } from '../../src/store/outbox.ts';

export const LOCAL_EHCIN = '3502A0001';
export const FOREIGN_EHCIN = '1101A0056';
export const PATIENT = { idType: '01', idNo: '350322199008207715' };

export async function softCard(dir: string, name = 'keys.json'): Promise<CryptoCard> {
  const keys = { ...DEFAULT_KEY_INDEXES };
  return new ProfiledCard(await SoftCard.open(path.join(dir, name), keys), keys);
}

/** An Upstream stand-in recording calls; `mode` decides what it answers. */
export class FakeUpstream implements Upstream {
  calls: Array<{ method: UpstreamMethod; biz: VerifyBiz; termId?: string }> = [];
  mode: 'ok' | 'down' | { code: string } = 'ok';
  identity: UpstreamIdentity = { id_type: '01', id_no: PATIENT.idNo, user_name: '陈俊海', mobile_phone: '13646032065' };
  async call(method: UpstreamMethod, biz: VerifyBiz, ctx?: { termId?: string }) {
    this.calls.push({ method, biz, termId: ctx?.termId });
    if (this.mode === 'down') throw new EhcError('8004', 'connect ECONNREFUSED 127.0.0.1:1');
    if (this.mode !== 'ok') throw new EhcError(this.mode.code as '2001', 'home system said no');
    return { ...this.identity };
  }
  async health() {
    return { reachable: this.mode !== 'down', url: 'fake://' };
  }
  async close() {}
}

export class MemoryOutbox {
  entries: OutboxEntry[] = [];
  async append(entry: OutboxEntry) {
    this.entries.push(structuredClone(entry));
    return this.entries.length;
  }
}
