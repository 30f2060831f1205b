/**
 * One writer per audit trail: a second process (a tool while the appliance runs) would fork the chain,
 * so `writer.lock` (O_EXCL, holding the pid) refuses it; a lock left by a dead process is taken over.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export class WriterLock {
  private readonly file: string;

  constructor(dir: string) {
    this.file = path.join(dir, 'writer.lock');
  }

  async take(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number((await readFile(this.file, 'utf8').catch(() => '')).trim());
        let alive = false;
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
          try {
            process.kill(pid, 0);
            alive = true;
          } catch (e) {
            alive = (e as NodeJS.ErrnoException).code === 'EPERM';
          }
        }
        if (alive || pid === process.pid) throw new Error(`audit trail ${path.dirname(this.file)} is in use by process ${pid}: one writer only`);
        await unlink(this.file).catch(() => {});
      }
    }
    throw new Error(`audit trail ${path.dirname(this.file)}: cannot take writer.lock`);
  }

  async release(): Promise<void> {
    await unlink(this.file).catch(() => {});
  }
}
