/**
 * The one durable-write helper. Every file the appliance keeps under its state folder is written here
 * (or says beside its writer why losing it is harmless); the inventory is in src/store/README.md.
 *
 * A power cut keeps only what was fsync'd. Writing a file in place can leave it empty or half-written;
 * renaming a temp file that was never fsync'd can leave a 0-byte file under the new name (ext4 with
 * delalloc, xfs: the rename's metadata reaches the journal before the data); a rename or a create that
 * is not followed by an fsync of its directory can be lost altogether. So:
 *
 * - `replaceFileDurably` (and `…Sync`): write `.<name>.<pid>.<n>.tmp` beside the file, fsync it, rename it
 *   over the file, fsync the directory. After a cut the file is the old version or the new one, whole.
 * - `createFileDurably` (and `…Sync`): a new file that must never replace anything (O_EXCL): write, fsync
 *   it, fsync the directory so its name survives too.
 * - `fsyncDir` (and `…Sync`): after creating, renaming or deleting entries yourself.
 *
 * Files are created 0600 unless told otherwise: the state folder holds sealed records and MACs, and
 * nobody but the service user reads them. Nothing here imports the features above it.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

export interface DurableWriteOptions {
  /** file mode of a newly created file (default 0600) */
  mode?: number;
}

let tmpCounter = 0;

function tmpName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
}

/** fsync a directory, so creates, renames and deletes in it survive a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replace (or create) `file` with `data`: temp file fsync'd, rename, directory fsync. */
export async function replaceFileDurably(file: string, data: string | Uint8Array, options: DurableWriteOptions = {}): Promise<void> {
  const tmp = tmpName(file);
  const fh = await open(tmp, 'wx', options.mode ?? 0o600);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

export function replaceFileDurablySync(file: string, data: string | Uint8Array, options: DurableWriteOptions = {}): void {
  const tmp = tmpName(file);
  const fd = openSync(tmp, 'wx', options.mode ?? 0o600);
  try {
    try {
      writeAll(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  fsyncDirSync(path.dirname(file));
}

/** Create a new file (fails with EEXIST if it exists), write, fsync it and its directory. */
export async function createFileDurably(file: string, data: string | Uint8Array, options: DurableWriteOptions = {}): Promise<void> {
  const fh = await open(file, 'wx', options.mode ?? 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsyncDir(path.dirname(file));
}

export function createFileDurablySync(file: string, data: string | Uint8Array, options: DurableWriteOptions = {}): void {
  const fd = openSync(file, 'wx', options.mode ?? 0o600);
  try {
    writeAll(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDirSync(path.dirname(file));
}

function writeAll(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/**
 * mkdir -p whose new folders survive a power cut: each folder created is made durable by an fsync of
 * its parent (a new name is a directory entry like any other). Folders are created 0700 by default.
 */
export function makeDirDurablySync(dir: string, mode = 0o700): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let d = abs; ; d = path.dirname(d)) {
    try {
      statSync(d);
      break;
    } catch {
      missing.unshift(d);
      if (path.dirname(d) === d) break;
    }
  }
  for (const d of missing) {
    try {
      mkdirSync(d, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    fsyncDirSync(path.dirname(d));
  }
}

export async function makeDirDurably(dir: string, mode = 0o700): Promise<void> {
  makeDirDurablySync(dir, mode);
}
