/**
 * The appliance's backup archive (`ehc-edge backup FILE` / `ehc-edge restore FILE`): a gzip'd tar
 * that standard tools can list (`tar tzf FILE`), holding
 *   MANIFEST.json          format, version, time, and every file: its role, where it goes back,
 *                          size, SHA-256, mode, owner and group (by name)
 *   config/<name>          the config file
 *   files/<n>-<name>       files the config points at outside the state dir (TLS files, a card key file)
 *   state/…                the whole state dir: outbox (SQLite with its WAL), audit chain, soft-card
 *                          keys, statistics
 * Both commands refuse while the appliance runs (a copy of a live outbox or audit file can be cut
 * mid-record); restore checks every file of the archive against the manifest — nothing unlisted,
 * nothing missing, every SHA-256 equal — before it writes anything, moves the state dir it replaces
 * aside (`<stateDir>.before-restore-<time>`), and gives files back their recorded owner and mode.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import type { ApplianceConfig } from '../../src/config/schema.ts';
import { CliError, EXIT, hisUrl } from './cli.ts';

export const BACKUP_FORMAT = 'ehc-edge-backup/1';

export interface ManifestFile {
  /** path inside the archive */
  name: string;
  role: 'config' | 'tls' | 'keys' | 'state';
  /** absolute path it was taken from and goes back to */
  target: string;
  size: number;
  sha256: string;
  mode: number;
  owner: string;
  group: string;
}

export interface Manifest {
  format: typeof BACKUP_FORMAT;
  created: string;
  appVersion: string;
  hostname: string;
  configPath: string;
  stateDir: string;
  files: ManifestFile[];
  /** the state dir and every directory in it, recreated with their owner and mode on restore */
  dirs: Array<{ target: string; mode: number; owner: string; group: string }>;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function idNames(file: string): Map<number, string> {
  const m = new Map<number, string>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && /^\d+$/.test(f[2]!)) m.set(Number(f[2]), f[0]!);
    }
  } catch {
    /* no such database: numeric ids */
  }
  return m;
}
function idsByName(file: string): Map<string, number> {
  return new Map([...idNames(file)].map(([id, name]) => [name, id]));
}

/** Whether the appliance of this config is running: its unit is active, or its HIS port answers. */
export async function runningWhy(config: ApplianceConfig): Promise<string | undefined> {
  const unit = spawnSync('systemctl', ['is-active', '--quiet', 'ehc-edge.service'], { stdio: 'ignore' });
  if (unit.status === 0) return 'ehc-edge.service is active (systemctl stop ehc-edge first)';
  const url = `${hisUrl(config)}/v1/health`;
  try {
    await fetch(url, { signal: AbortSignal.timeout(1500) });
    return `the appliance answers on ${url} (stop it first)`;
  } catch {
    return undefined;
  }
}

function walk(dir: string, files: string[], dirs: string[]): void {
  const entries = readdirSync(dir, { withFileTypes: true });
  dirs.push(dir);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, files, dirs);
    else if (e.isFile()) files.push(p);
    // sockets, fifos and symlinks in the state dir are not state
  }
}

const inside = (dir: string, file: string) => !path.relative(dir, file).startsWith('..') && !path.isAbsolute(path.relative(dir, file));

/** Write the archive of `config`'s appliance to `file`. The appliance must be stopped. */
export async function createBackup(config: ApplianceConfig, file: string, appVersion: string): Promise<Manifest> {
  const running = await runningWhy(config);
  if (running) throw new CliError(EXIT.USAGE, `设备正在运行，不做备份：${running}`, `refusing to back up a running appliance: ${running}`);
  if (!existsSync(config.stateDir)) throw new CliError(EXIT.USAGE, `${config.stateDir}：状态目录不存在（没有可备份的内容）`, `${config.stateDir}: the state dir does not exist (nothing to back up)`);
  const users = idNames('/etc/passwd');
  const groups = idNames('/etc/group');
  const owner = (p: string) => {
    const st = statSync(p);
    return { mode: st.mode & 0o7777, owner: users.get(st.uid) ?? String(st.uid), group: groups.get(st.gid) ?? String(st.gid) };
  };
  const stage = mkdtempSync(path.join(os.tmpdir(), 'ehc-backup-'));
  try {
    const files: ManifestFile[] = [];
    const add = (src: string, name: string, role: ManifestFile['role']) => {
      const dst = path.join(stage, name);
      mkdirSync(path.dirname(dst), { recursive: true });
      copyFileSync(src, dst);
      files.push({ name, role, target: src, size: statSync(dst).size, sha256: sha256(dst), ...owner(src) });
    };
    add(config.configPath, `config/${path.basename(config.configPath)}`, 'config');
    const referenced: Array<[string | undefined, ManifestFile['role']]> = [
      [config.his.tls?.cert, 'tls'],
      [config.his.tls?.key, 'tls'],
      [config.his.tls?.ca, 'tls'],
      [config.upstream.tls?.ca, 'tls'],
      [config.upstream.tls?.cert, 'tls'],
      [config.upstream.tls?.key, 'tls'],
      [config.card.keyFile, 'keys'],
    ];
    const seen = new Set<string>([config.configPath]);
    for (const [p, role] of referenced) {
      if (!p || seen.has(p) || inside(config.stateDir, p) || !existsSync(p)) continue;
      seen.add(p);
      add(p, `files/${files.length}-${path.basename(p)}`, role);
    }
    const stateFiles: string[] = [];
    const stateDirs: string[] = [];
    walk(config.stateDir, stateFiles, stateDirs);
    for (const f of stateFiles.sort()) add(f, `state/${path.relative(config.stateDir, f)}`, 'state');
    const manifest: Manifest = {
      format: BACKUP_FORMAT,
      created: new Date().toISOString(),
      appVersion,
      hostname: os.hostname(),
      configPath: config.configPath,
      stateDir: config.stateDir,
      files,
      dirs: stateDirs.map((d) => ({ target: d, ...owner(d) })),
    };
    writeFileSync(path.join(stage, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');
    const out = path.resolve(file);
    const tmp = `${out}.partial`;
    await tar.create({ gzip: true, file: tmp, cwd: stage, portable: true }, ['MANIFEST.json', ...files.map((f) => f.name)]);
    chmodSync(tmp, 0o600);
    renameSync(tmp, out);
    return manifest;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Unpack and check an archive into a temporary dir: every file listed, none extra, every SHA-256 equal. */
export async function openBackup(file: string): Promise<{ dir: string; manifest: Manifest; cleanup: () => void }> {
  if (!existsSync(file)) throw new CliError(EXIT.USAGE, `${file}：没有这个备份包`, `${file}: no such archive`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ehc-restore-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    try {
      await tar.extract({ file, cwd: dir, strict: true, preserveOwner: false });
    } catch (err) {
      throw new CliError(EXIT.FAILURE, `${file}：不是可读的备份包（${(err as Error).message}）`, `${file}: not a readable backup archive (${(err as Error).message})`);
    }
    let manifest: Manifest;
    try {
      manifest = JSON.parse(readFileSync(path.join(dir, 'MANIFEST.json'), 'utf8')) as Manifest;
    } catch (err) {
      throw new CliError(EXIT.FAILURE, `${file}：没有可读的 MANIFEST.json（${(err as Error).message}）`, `${file}: no readable MANIFEST.json (${(err as Error).message})`);
    }
    if (manifest.format !== BACKUP_FORMAT) throw new CliError(EXIT.FAILURE, `${file}：格式 ${String(manifest.format)}，应为 ${BACKUP_FORMAT}`, `${file}: format ${String(manifest.format)}, expected ${BACKUP_FORMAT}`);
    const listed = new Set(manifest.files.map((f) => f.name));
    const present: string[] = [];
    walk(dir, present, []);
    for (const p of present) {
      const name = path.relative(dir, p);
      if (name !== 'MANIFEST.json' && !listed.has(name)) throw new CliError(EXIT.FAILURE, `${file}：${name} 在备份包中，但不在其清单里`, `${file}: ${name} is in the archive but not in its manifest`);
    }
    for (const f of manifest.files) {
      const p = path.join(dir, f.name);
      if (!inside(dir, p) || !path.isAbsolute(f.target)) throw new CliError(EXIT.FAILURE, `${file}：清单项 ${f.name} → ${f.target} 不是安全的路径`, `${file}: manifest entry ${f.name} → ${f.target} is not a safe path`);
      if (!existsSync(p)) throw new CliError(EXIT.FAILURE, `${file}：${f.name} 在清单中，但备份包里没有`, `${file}: ${f.name} is in the manifest but missing from the archive`);
      const got = sha256(p);
      if (got !== f.sha256 || lstatSync(p).size !== f.size) throw new CliError(EXIT.FAILURE, `${file}：${f.name} 与清单不符（sha256 ${got.slice(0, 16)}…，应为 ${f.sha256.slice(0, 16)}…）：备份包已损坏`, `${file}: ${f.name} does not match its manifest (sha256 ${got.slice(0, 16)}…, expected ${f.sha256.slice(0, 16)}…): the archive is damaged`);
    }
    return { dir, manifest, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** Put an archive back. The appliance (of the archived config) must be stopped. */
export async function restoreBackup(file: string, config: ApplianceConfig | undefined): Promise<{ manifest: Manifest; movedAside?: string }> {
  const opened = await openBackup(file);
  try {
    const { manifest, dir } = opened;
    // the running check needs an address: the config in place, else the archived one
    const probe = config ?? (await import('../../src/config/load.ts')).loadConfig(path.join(dir, manifest.files.find((f) => f.role === 'config')!.name));
    const running = await runningWhy(probe);
    if (running) throw new CliError(EXIT.USAGE, `设备正在运行，不做恢复：${running}`, `refusing to restore over a running appliance: ${running}`);
    const uids = idsByName('/etc/passwd');
    const gids = idsByName('/etc/group');
    const own = (p: string, e: { mode: number; owner: string; group: string }) => {
      chmodSync(p, e.mode);
      const uid = uids.get(e.owner) ?? (/^\d+$/.test(e.owner) ? Number(e.owner) : undefined);
      const gid = gids.get(e.group) ?? (/^\d+$/.test(e.group) ? Number(e.group) : undefined);
      if (process.getuid?.() === 0 && uid !== undefined && gid !== undefined) chownSync(p, uid, gid);
    };
    let movedAside: string | undefined;
    if (existsSync(manifest.stateDir)) {
      movedAside = `${manifest.stateDir}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(manifest.stateDir, movedAside);
    }
    for (const d of manifest.dirs) {
      mkdirSync(d.target, { recursive: true });
      own(d.target, d);
    }
    for (const f of manifest.files) {
      mkdirSync(path.dirname(f.target), { recursive: true });
      const tmp = `${f.target}.restoring`;
      copyFileSync(path.join(dir, f.name), tmp);
      own(tmp, f);
      renameSync(tmp, f.target);
    }
    spawnSync('sync', [], { stdio: 'ignore' });
    return { manifest, movedAside };
  } finally {
    opened.cleanup();
  }
}
