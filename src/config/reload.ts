/**
 * SIGHUP: what of a re-read config can change in a running appliance, and what needs a restart.
 * Applied at once: `his.apiKeys` (the HIS port's key matcher, src/his/auth.ts, takes the new list) and
 * `log.level` (process-wide). Every other changed key — `scanners` too: the running config is frozen
 * and the scanner manager holds its list — is named as needing `systemctl restart ehc-edge`, and keeps
 * its running value until then.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ApplianceConfig } from './schema.ts';

export interface ReloadHooks {
  setLogLevel(level: ApplianceConfig['log']['level']): void;
  setHisKeys(keys: readonly string[]): void;
}

export interface ReloadResult {
  /** keys applied now */
  applied: string[];
  /** keys that changed but apply only after a restart */
  needsRestart: string[];
}

const APPLIED = new Set(['his.apiKeys', 'log.level']);

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

/** Apply what can be applied of `next` through the hooks and say the rest. */
export async function applyReload(running: ApplianceConfig, next: ApplianceConfig, hooks: ReloadHooks): Promise<ReloadResult> {
  const changed = changedKeys(running, next);
  const applied: string[] = [];
  for (const key of changed) {
    if (!APPLIED.has(key)) continue;
    if (key === 'his.apiKeys') hooks.setHisKeys(next.his.apiKeys);
    if (key === 'log.level') hooks.setLogLevel(next.log.level);
    applied.push(key);
  }
  return { applied, needsRestart: changed.filter((k) => !APPLIED.has(k)) };
}
