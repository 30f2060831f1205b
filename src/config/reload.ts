/**
 * SIGHUP: what of a re-read config can change in a running appliance, and what needs a restart.
 * Applied at once: `his.apiKeys` (the HIS port's key matcher, src/his/auth.ts, takes the new list),
 * `log.level` (process-wide), `scanners` and `scannerAutoDetect` (the scanner manager opens, closes or
 * reopens only the scanners whose entry was added, removed or changed; the others keep running, see
 * drivers/manager.ts `reconfigure`). Every other changed key is named as needing
 * `systemctl restart ehc-edge`, and keeps its running value until then.
 *
 * `reloadConfigFile` is the one reload path: SIGHUP (src/main.ts) and `POST /v1/admin/reload`
 * (src/his/admin-routes.ts) both call it through the appliance's `reload()`.
 */
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, loadConfig } from './load.ts';
import { checkPlaceholders, checkTlsFiles } from './startup-checks.ts';
import type { ApplianceConfig, ScannerConfig } from './schema.ts';

/**
 * What a running appliance does with the keys applied at once; the composition root gives them
 * (src/appliance.ts `reload`: HIS keys through its key ring). `C` is what the scanner side reports it did.
 */
export interface ReloadHooks<C = unknown> {
  setLogLevel(level: ApplianceConfig['log']['level']): void;
  setHisKeys(keys: readonly string[]): void;
  /** resolves once the scanners concerned were opened, closed or reopened */
  setScanners(scanners: readonly ScannerConfig[], autoDetect: boolean): Promise<C>;
}

export interface ReloadResult<C = unknown> {
  /** keys applied now */
  applied: string[];
  /** keys that changed but apply only after a restart */
  needsRestart: string[];
  /** what the scanner reconfiguration did (when scanners or scannerAutoDetect changed) */
  scanners?: C;
  /** the config now running: `running` with the applied keys of `next` (the base of the next reload) */
  running: ApplianceConfig;
}

const APPLIED = new Set(['his.apiKeys', 'log.level', 'scanners', 'scannerAutoDetect']);

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
export async function applyReload<C>(running: ApplianceConfig, next: ApplianceConfig, hooks: ReloadHooks<C>): Promise<ReloadResult<C>> {
  const changed = changedKeys(running, next);
  const applied = changed.filter((k) => APPLIED.has(k));
  let now: ApplianceConfig = running;
  if (applied.includes('his.apiKeys')) {
    hooks.setHisKeys(next.his.apiKeys);
    now = { ...now, his: { ...now.his, apiKeys: next.his.apiKeys } };
  }
  if (applied.includes('log.level')) {
    hooks.setLogLevel(next.log.level);
    now = { ...now, log: { ...now.log, level: next.log.level } };
  }
  let scanners: C | undefined;
  if (applied.includes('scanners') || applied.includes('scannerAutoDetect')) {
    scanners = await hooks.setScanners(next.scanners, next.scannerAutoDetect);
    now = { ...now, scanners: next.scanners, scannerAutoDetect: next.scannerAutoDetect };
  }
  return { applied, needsRestart: changed.filter((k) => !APPLIED.has(k)), ...(scanners ? { scanners } : {}), running: now };
}

export type ReloadOutcome<C = unknown> = ({ ok: true } & ReloadResult<C>) | { ok: false; problem: string };

/**
 * Re-read the running config's file, check it as the start does (schema, placeholders, TLS files) and
 * apply what can be applied. A file that does not pass is refused whole: the running config stays.
 */
export async function reloadConfigFile<C>(running: ApplianceConfig, hooks: ReloadHooks<C>): Promise<ReloadOutcome<C>> {
  let next: ApplianceConfig;
  try {
    next = loadConfig(running.configPath);
    checkPlaceholders(next);
    checkTlsFiles(next);
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, problem: err.message };
    throw err;
  }
  return { ok: true, ...(await applyReload(running, next, hooks)) };
}
