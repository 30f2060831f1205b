/**
 * Dynamic health codes that are never the same text twice. A simulator code is a pure function of the
 * person and its expiry in whole seconds (SM4-ECB of both), so two codes for one person issued within
 * the same second ARE the same text — and the scan pipeline suppresses the second one from the same
 * scanner as a duplicate read (scan.dedupeWindowMs): no result event, nothing on the desk. A test that
 * scans "a new code" for a person it scanned a moment ago takes it from here.
 */
import type { SimCardSystem } from '../../demo/simulator/index.ts';
import type { Identity } from '../../src/crypto/card.ts';

export function freshCodes(sim: Pick<SimCardSystem, 'issueCode'>, clock: () => number = Date.now): (who: Identity, expiresInMs: number) => string {
  const issued = new Set<string>();
  return (who, expiresInMs) => {
    let expiresAt = clock() + expiresInMs;
    let code = sim.issueCode(who, { expiresAt: new Date(expiresAt) });
    // the next whole second of expiry until the text is new (a code valid one second longer)
    while (issued.has(code)) code = sim.issueCode(who, { expiresAt: new Date((expiresAt += 1000)) });
    issued.add(code);
    return code;
  };
}
