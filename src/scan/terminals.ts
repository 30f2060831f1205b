/**
 * 识读终端 (reading terminal) numbers for scanners: EHCIN(9) + 'STM' + authority class letter +
 * 4-digit serial (ehc-protocol.md §2), e.g. `3502A0001STMA0001`. Each scannerId gets one number, once,
 * kept in the state store so it survives restarts and replugs; a number set in the config wins.
 * The appliance's own site.termId and configured numbers are never handed out again.
 */
import type { ApplianceConfig } from '../config/schema.ts';
import { EhcError } from '../errors.ts';
import type { StateStore } from '../store/state.ts';

export const STM_PATTERN = /^[0-9]{4}[ABCDEFX][0-9]{4}STM[ABCDEFX][0-9]{4}$/;

export interface TerminalRegistry {
  termIdFor(scannerId: string): Promise<string>;
  known(): Record<string, string>;
  /** numbers set in a reloaded config: never handed out to another scanner */
  reserve(codes: readonly string[]): void;
}

export function createTerminalRegistry(config: Pick<ApplianceConfig, 'site' | 'scanners'>, store: StateStore): TerminalRegistry {
  const site = config.site;
  const siteStm = STM_PATTERN.test(site.termId) ? site.termId : undefined;
  const ehcin = siteStm?.slice(0, 9) ?? site.localEhcins[0];
  if (!ehcin) throw new EhcError('1002', 'cannot number scanners: site.localEhcins is empty and site.termId is not an STM number');
  const classLetter = siteStm?.charAt(12) ?? 'A';
  const prefix = `${ehcin}STM${classLetter}`;
  const reserved = new Set<string>([...(siteStm ? [siteStm] : []), ...config.scanners.map((s) => s.stmCode).filter((c): c is string => !!c)]);
  let pending: Promise<unknown> = Promise.resolve();

  const allocate = async (scannerId: string): Promise<string> => {
    const have = store.data.terminals[scannerId];
    if (have) return have.stm;
    const used = new Set([...reserved, ...Object.values(store.data.terminals).map((t) => t.stm)]);
    let serial = 1;
    while (used.has(prefix + String(serial).padStart(4, '0'))) serial++;
    if (serial > 9999) throw new EhcError('1009', `no free reading-terminal number left under ${prefix}`);
    const stm = prefix + String(serial).padStart(4, '0');
    store.data.terminals[scannerId] = { stm, allocatedAt: new Date().toISOString() };
    await store.write();
    return stm;
  };

  return {
    termIdFor(scannerId) {
      const cached = store.data.terminals[scannerId];
      if (cached) return Promise.resolve(cached.stm);
      const run = pending.then(() => allocate(scannerId));
      pending = run.catch(() => {});
      return run;
    },
    reserve(codes) {
      for (const c of codes) reserved.add(c);
    },
    known() {
      return Object.fromEntries(Object.entries(store.data.terminals).map(([k, v]) => [k, v.stm]));
    },
  };
}
