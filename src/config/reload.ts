/**
 * SIGHUP: what of a re-read config can change in a running appliance, and what needs a restart.
 * Applied in place: `his.apiKeys` (the key list the HIS port's matcher reads: src/his/auth.ts
 * re-derives its digests when the list changes), `log.level` (process-wide), `scanners` (the list the
 * scanner manager reconciles: a scanner added is opened, one removed is closed; a changed setting of a
 * scanner already open applies when it is next opened). Every other changed key is named as needing
 * `systemctl restart ehc-edge`, and keeps its running value until then.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ApplianceConfig } from './types.ts';

export interface ReloadHooks {
  setLogLevel(level: ApplianceConfig['log']['level']): void;
  /** the scanner list changed (already replaced in place) */
  rescan(): Promise<void> | void;
}

export interface ReloadResult {
  /** keys applied now */
  applied: string[];
  /** keys that changed but apply only after a restart */
  needsRestart: string[];
}

const APPLIED = new Set(['his.apiKeys', 'log.level', 'scanners']);

/** changed keys, two levels deep (`his.listen`, `upstream.url`, `scanners`) */
export function changedKeys(running: ApplianceConfig, next: ApplianceConfig): string[] {
  const out: string[] = [];
  const a = running as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (k === 'configPath' || k === 'configDir') continue;
    const x = a[k];
    const y = b[k];
    if (isDeepStrictEqual(x, y)) continue;
    const plain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (plain(x) && plain(y)) {
      for (const j of new Set([...Object.keys(x), ...Object.keys(y)])) if (!isDeepStrictEqual(x[j], y[j])) out.push(`${k}.${j}`);
    } else out.push(k);
  }
  return out.sort();
}

/** Apply what can be applied of `next` to the running config object (in place) and say the rest. */
export async function applyReload(running: ApplianceConfig, next: ApplianceConfig, hooks: ReloadHooks): Promise<ReloadResult> {
  const changed = changedKeys(running, next);
  const applied: string[] = [];
  for (const key of changed) {
    if (!APPLIED.has(key)) continue;
    if (key === 'his.apiKeys') running.his.apiKeys.splice(0, running.his.apiKeys.length, ...next.his.apiKeys);
    if (key === 'log.level') {
      running.log.level = next.log.level;
      hooks.setLogLevel(next.log.level);
    }
    if (key === 'scanners') {
      running.scanners.splice(0, running.scanners.length, ...next.scanners);
      await hooks.rescan();
    }
    applied.push(key);
  }
  return { applied, needsRestart: changed.filter((k) => !APPLIED.has(k)) };
}
