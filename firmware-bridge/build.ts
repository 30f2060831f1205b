/**
 * Builds the addon (node-gyp) and the software SDF library (make + cc over libcrypto) when they are
 * missing or older than their sources. Used by tests and the bench before loading, and runnable:
 *   node --import tsx firmware-bridge/build.ts        (npm run build:bridge)
 * node-gyp: the project's devDependency when installed, else the copy npm ships. Node's headers come
 * from the local installation (--nodedir) when present, so nothing is downloaded.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BRIDGE_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ADDON_PATH = path.join(BRIDGE_DIR, 'build', 'Release', 'sdf_bridge.node');
export const SOFTSDF_DIR = path.join(BRIDGE_DIR, 'softsdf');
export const SOFTSDF_PATH = path.join(SOFTSDF_DIR, 'build', 'libsoftsdf.so');
export const SOFTSDF_ECC32_PATH = path.join(SOFTSDF_DIR, 'build', 'libsoftsdf-ecc32.so');
/** softsdf with the vendor extension SDF_GetSymmKeyHandle, for the quirk table's tests */
export const SOFTSDF_VENDOR_PATH = path.join(SOFTSDF_DIR, 'build', 'libsoftsdf-vendor.so');

export interface BuildResult {
  ok: boolean;
  /** why it failed, with the fix (e.g. the Debian package to install) */
  why?: string;
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function stale(output: string, inputs: string[]): boolean {
  const out = mtime(output);
  return out === 0 || inputs.some((i) => mtime(i) > out);
}

function nodeGypScript(): string | null {
  const req = createRequire(path.join(BRIDGE_DIR, '..', 'package.json'));
  try {
    return req.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    /* fall back to npm's bundled copy */
  }
  const npmRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout?.trim();
  const bundled = npmRoot ? path.join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : '';
  return bundled && existsSync(bundled) ? bundled : null;
}

function localNodeDir(): string | null {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

let addonResult: BuildResult | undefined;
let softsdfResult: BuildResult | undefined;

export function buildAddon(force = false): BuildResult {
  if (addonResult && !force) return addonResult;
  const inputs = ['src/addon.cc', 'src/sdf.h', 'binding.gyp'].map((f) => path.join(BRIDGE_DIR, f));
  if (!force && !stale(ADDON_PATH, inputs)) return (addonResult = { ok: true });
  const gyp = nodeGypScript();
  if (!gyp) return (addonResult = { ok: false, why: 'node-gyp not found (npm install, or install npm with its bundled node-gyp)' });
  const nodedir = localNodeDir();
  const args = [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const r = spawnSync(process.execPath, args, { cwd: BRIDGE_DIR, encoding: 'utf8' });
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => !l.startsWith('gyp info')).slice(-15).join('\n');
    return (addonResult = { ok: false, why: `node-gyp rebuild failed (needs build-essential, python3):\n${tail}` });
  }
  return (addonResult = { ok: true });
}

export function buildSoftsdf(): BuildResult {
  if (softsdfResult) return softsdfResult;
  const probe = spawnSync('sh', ['-c', 'echo "#include <openssl/evp.h>" | cc -E -x c - >/dev/null'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    return (softsdfResult = { ok: false, why: 'OpenSSL headers or a C compiler are missing: apt-get install build-essential libssl-dev pkg-config' });
  }
  const r = spawnSync('make', ['-s', '-C', SOFTSDF_DIR], { encoding: 'utf8' });
  if (r.status !== 0) return (softsdfResult = { ok: false, why: `make softsdf failed:\n${r.stdout}${r.stderr}` });
  return (softsdfResult = { ok: true });
}

/** Both parts; `why` names the first that could not be built. */
export function ensureBuilt(): BuildResult {
  const a = buildAddon();
  if (!a.ok) return a;
  return buildSoftsdf();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const a = buildAddon(process.argv.includes('--force'));
  console.log(a.ok ? `addon: ${ADDON_PATH}` : `addon: FAILED ${a.why}`);
  const s = buildSoftsdf();
  console.log(s.ok ? `softsdf: ${SOFTSDF_PATH}` : `softsdf: not built: ${s.why}`);
  process.exit(a.ok ? 0 : 1);
}
