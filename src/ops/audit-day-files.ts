/**
 * The audit trail's day files (`audit-YYYYMMDD.jsonl`, 0600, append-only): the one open file of the
 * current day, whole writes (a short write, the disk filling up, is not an error to write(): the rest is
 * written until it is one) each followed by fsync, and the cut back to a size after a failed write.
 * A day file's directory entry is made durable when this process opens it, before its first record
 * counts — also a file that was already there: a process killed between creating it and that fsync
 * leaves a name that a power cut can still take, with every record acknowledged in it afterwards.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../platform/durable-write.ts';
import { auditFileName } from './audit-record.ts';

export class AuditDayFiles {
  private handle: FileHandle | null = null;
  private day = '';
  /** bytes of the open day file */
  size = 0;

  constructor(private readonly dir: string) {}

  /** Opens the file of `day` (closing the previous day's); true when it was created. */
  async use(day: string): Promise<boolean> {
    if (this.handle && this.day === day) return false;
    await this.close();
    const file = path.join(this.dir, auditFileName(day));
    let existed = true;
    try {
      await stat(file);
    } catch {
      existed = false;
    }
    const handle = await open(file, 'a', 0o600);
    try {
      // once per open (a start, a new day), not per write: whether the name is durable yet is not known here
      await fsyncDir(this.dir);
      this.size = (await handle.stat()).size;
    } catch (err) {
      await handle.close();
      throw err; // not in use: the next write opens it again
    }
    this.handle = handle;
    this.day = day;
    return !existed;
  }

  /** Writes all of `buf` to the open file, then fsync. */
  async write(buf: Buffer): Promise<void> {
    for (let off = 0; off < buf.length; ) off += (await this.handle!.write(buf, off, buf.length - off)).bytesWritten;
    await this.handle!.sync();
    this.size += buf.length;
  }

  /** Cuts the open file back to `size` (what was there before a failed write), durably. */
  async cut(size: number): Promise<void> {
    if (!this.handle) return;
    await this.handle.truncate(size);
    await this.handle.sync();
  }

  get open(): boolean {
    return this.handle !== null;
  }

  async close(): Promise<void> {
    if (this.handle) await this.handle.close();
    this.handle = null;
  }
}
