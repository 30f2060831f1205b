/**
 * 1000 concurrent decryptEhcid calls — the standard asks the card API to answer 1000 concurrent calls
 * within 1 s — through the real addon and the software SDF library (softsdf), beside SoftCard.
 * Prints p50/p99 per call (from issue to answer, so it includes queueing behind the session pool)
 * and the total wall time of the burst. Runnable directly: node --import tsx bench/sdf.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, SOFTSDF_PATH } from '../firmware-bridge/build.ts';
import { DEFAULT_KEY_INDEXES, type CryptoCard } from '../src/crypto/card.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { SdfCard } from '../src/crypto/sdf-card.ts';
import { generateSoftKeys, SoftCard, writeKeyFile } from '../src/crypto/soft-card.ts';
import { createLogger } from '../src/platform/log.ts';
import { entriesFromSoftKeyFile, importKeys } from '../tools/card-keys.ts';

const CALLS = 1000;
const SESSIONS = 8;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function burst(card: CryptoCard, codes: string[]): Promise<{ totalMs: number; p50Ms: number; p99Ms: number; maxMs: number }> {
  const lat: number[] = new Array(codes.length);
  const t0 = performance.now();
  await Promise.all(
    codes.map(async (code, i) => {
      const s = performance.now();
      await card.decryptEhcid(code);
      lat[i] = performance.now() - s;
    }),
  );
  const totalMs = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const r = (n: number) => Math.round(n * 100) / 100;
  return { totalMs: r(totalMs), p50Ms: r(percentile(lat, 50)), p99Ms: r(percentile(lat, 99)), maxMs: r(lat[lat.length - 1]!) };
}

export async function run(): Promise<Record<string, unknown>> {
  const built = ensureBuilt();
  if (!built.ok) return { skipped: `addon/softsdf not buildable here: ${built.why}` };
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-bench-sdf-'));
  const keys = { ...DEFAULT_KEY_INDEXES };
  try {
    const softFile = path.join(dir, 'soft.keys.json');
    writeKeyFile(softFile, generateSoftKeys());
    const sdfFile = path.join(dir, 'softsdf.keys');
    importKeys(sdfFile, entriesFromSoftKeyFile(softFile, keys));
    process.env.SOFTSDF_KEYFILE = sdfFile;
    const soft = new ProfiledCard(await SoftCard.open(softFile, keys), keys);
    const sdf = new ProfiledCard(await SdfCard.open({ library: SOFTSDF_PATH, sessions: SESSIONS }, keys, createLogger({ level: 'error' })), keys);
    const health = await sdf.health();
    if (!health.ok) throw new Error(`softsdf card is down: ${health.detail}`);
    const codes = await Promise.all(Array.from({ length: CALLS }, (_, i) => soft.issueEhcid({ idType: '01', idNo: `3503221990082${String(i).padStart(5, '0')}` })));
    await burst(sdf, codes.slice(0, 100)); // warm: sessions hold their key handles
    await burst(soft, codes.slice(0, 100));
    const sdfRun = await burst(sdf, codes);
    const softRun = await burst(soft, codes);
    await Promise.all([soft.close(), sdf.close()]);
    return {
      calls: CALLS,
      sessions: SESSIONS,
      uvThreadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
      sdfSoftsdf: sdfRun,
      softCard: softRun,
      withinOneSecond: sdfRun.totalMs <= 1000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await run();
  console.log(JSON.stringify(result, null, 2));
  if (result.withinOneSecond === false) process.exitCode = 1;
}
