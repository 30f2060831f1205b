/**
 * Durability off the event loop: SQLite commits with synchronous=NORMAL (no sync at commit in WAL
 * mode) and this room fsyncs the -wal file in libuv's threadpool, settling a batch only after an fsync
 * that BEGAN after its commit. One fsync covers every commit made while the previous one ran. (With
 * synchronous=FULL each commit blocked the whole process for one fsync, ~2–5 ms on the disks measured.)
 */
import { closeSync, fsync } from 'node:fs';
import { EhcError } from '../errors.ts';
import type { Logger } from '../platform/log.ts';

export class WalSync {
  private syncing = false;
  /** batches committed but not yet covered by a completed fsync */
  private awaiting: Array<{ ok: () => void; fail: (e: EhcError) => void }> = [];

  constructor(
    /** the -wal file; undefined when SQLite syncs at commit itself */
    private readonly walFd: number | undefined,
    private readonly file: string,
    private readonly onFailure: (batches: number, code: string | undefined) => void,
    private readonly log?: Logger,
  ) {}

  /** Settle after an fsync of the WAL that started after this call (or at once when SQLite synced). */
  whenDurable(ok: () => void, fail: (e: EhcError) => void): void {
    if (this.walFd === undefined) return ok();
    this.awaiting.push({ ok, fail });
    this.sync();
  }

  private sync(): void {
    if (this.syncing || this.awaiting.length === 0 || this.walFd === undefined) return;
    this.syncing = true;
    const covered = this.awaiting.splice(0);
    fsync(this.walFd, (err) => {
      this.syncing = false;
      if (err) {
        this.onFailure(covered.length, err.code);
        const e = new EhcError('8007', `outbox: fsync of ${this.file}-wal failed (${err.code ?? err.message}); ${covered.length} batch(es) not acknowledged`, { cause: err });
        this.log?.error('outbox fsync failed', { code: err.code, batches: covered.length });
        covered.forEach((c) => c.fail(e));
      } else {
        covered.forEach((c) => c.ok());
      }
      this.sync(); // commits made meanwhile
    });
  }

  /** Waits for the fsyncs under way, then closes the -wal file. */
  async close(): Promise<void> {
    while (this.syncing || this.awaiting.length > 0) await new Promise((r) => setTimeout(r, 1));
    if (this.walFd !== undefined) closeSync(this.walFd);
  }
}
