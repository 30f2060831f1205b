/**
 * ScanEvent → duplicate suppression → Verifier → result, published on the hub.
 * Health-card payloads are verified with the scanner's own reading-terminal number as termId; any
 * other payload (the desk may scan other barcodes) is published as a `raw` scan and never verified.
 * Logs carry maskCode() of a health code and only a length + fingerprint of anything else, never the text.
 */
import { createHash } from 'node:crypto';
import type { ScanEvent } from '../../drivers/types.ts';
import { maskCode } from '../platform/mask.ts';
import { asEhcError } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import type { Verifier } from '../verify/types.ts';
import type { ScanHub } from './hub.ts';

// Shape test for a health-card QR payload (full parsing is the Verifier's job).
import { looksLikeHealthCode } from '../code/parse.ts';

/** A short, non-reversible tag of a scanned text, to correlate log lines without the text. */
export function fingerprint(text: string): string {
  return 'sha256:' + createHash('sha256').update(text).digest('hex').slice(0, 12);
}

export interface ScannerIdentity {
  name?: string;
  station?: string;
  /** registered reading-terminal number */
  termId: string;
}

export interface PipelineDeps {
  verifier: Verifier;
  hub: ScanHub;
  log: Logger;
  dedupeWindowMs: number;
  identity: (scannerId: string) => Promise<ScannerIdentity>;
  treatmentCode?: string;
}

export interface PipelineOutcome {
  status: 'duplicate' | 'raw' | 'verified' | 'failed';
  scanEventId?: number;
  resultEventId?: number;
}

export interface PipelineCounts {
  scans: number;
  duplicates: number;
  raw: number;
  verified: number;
  failed: number;
}

export class ScanPipeline {
  readonly #deps: PipelineDeps;
  readonly #seen = new Map<string, number>();
  #counts: PipelineCounts = { scans: 0, duplicates: 0, raw: 0, verified: 0, failed: 0 };

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
  }

  get counts(): PipelineCounts {
    return { ...this.#counts };
  }

  /** True when the same text came from the same scanner within the window (and remembers this one). */
  #isDuplicate(ev: ScanEvent): boolean {
    const window = this.#deps.dedupeWindowMs;
    if (window <= 0) return false;
    const key = ev.scannerId + '\u0000' + ev.text;
    const last = this.#seen.get(key);
    this.#seen.set(key, ev.at);
    if (this.#seen.size > 1024) {
      for (const [k, at] of this.#seen) if (ev.at - at > window) this.#seen.delete(k);
    }
    return last !== undefined && ev.at - last < window;
  }

  async ingest(ev: ScanEvent): Promise<PipelineOutcome> {
    const { hub, log, verifier } = this.#deps;
    this.#counts.scans++;
    if (this.#isDuplicate(ev)) {
      this.#counts.duplicates++;
      log.debug('duplicate scan suppressed', { scannerId: ev.scannerId, code: maskCode(ev.text) });
      return { status: 'duplicate' };
    }
    let who: ScannerIdentity;
    try {
      who = await this.#deps.identity(ev.scannerId);
    } catch (err) {
      // no terminal number (e.g. none left to allocate): the scan cannot be verified, say so on the stream
      const e = asEhcError(err, '1009', 'reading terminal');
      this.#counts.failed++;
      const out = hub.publish('error', ev.scannerId, undefined, { ...e.toJSON(), scannerId: ev.scannerId });
      log.error('scan without a terminal number', { scannerId: ev.scannerId, ret_code: e.code, reason: e.message });
      return { status: 'failed', resultEventId: out.id };
    }
    const isCode = looksLikeHealthCode(ev.text);
    const base = { scannerId: ev.scannerId, station: who.station, name: who.name, termId: who.termId };
    const scanEv = hub.publish('scan', ev.scannerId, who.station, {
      ...base,
      kind: isCode ? 'ehc' : 'raw',
      text: ev.text,
      symbology: ev.symbology,
      at: new Date(ev.at).toISOString(),
    });
    if (!isCode) {
      this.#counts.raw++;
      // a raw barcode may be anything (a wristband with an ID number): log its length and a fingerprint only
      log.info('raw scan passed through', { scannerId: ev.scannerId, scanId: scanEv.id, length: ev.text.length, fingerprint: fingerprint(ev.text) });
      return { status: 'raw', scanEventId: scanEv.id };
    }
    try {
      const result = await verifier.verify({
        ehealthCode: ev.text,
        termId: who.termId,
        scannerId: ev.scannerId,
        treatmentCode: this.#deps.treatmentCode,
      });
      this.#counts.verified++;
      const out = hub.publish('result', ev.scannerId, who.station, { ...result, scanId: scanEv.id, ...base });
      log.info('scan verified', { scannerId: ev.scannerId, scanId: scanEv.id, decided_by: result.decided_by, code: maskCode(ev.text) });
      return { status: 'verified', scanEventId: scanEv.id, resultEventId: out.id };
    } catch (err) {
      const e = asEhcError(err, '9999', 'verify');
      this.#counts.failed++;
      const out = hub.publish('error', ev.scannerId, who.station, { ...e.toJSON(), scanId: scanEv.id, ...base });
      log.warn('scan not verified', { scannerId: ev.scannerId, scanId: scanEv.id, ret_code: e.code, code: maskCode(ev.text) });
      return { status: 'failed', scanEventId: scanEv.id, resultEventId: out.id };
    }
  }
}
