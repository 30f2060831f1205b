/**
 * A simulated serial scanner: `socat -d -d pty,rawer,echo=0 pty,rawer,echo=0` gives two real ttys
 * joined back to back. The appliance opens `devicePath` (the scanner's port); the test writes what
 * the scanner "sends" into `hostPath`. Killing socat is an unplug; starting it again with the same
 * links is a replug.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';

function rmLinks(...paths: string[]): void {
  for (const p of paths) rmSync(p, { force: true });
}

export function socatMissing(): string | undefined {
  const r = spawnSync('socat', ['-V'], { stdio: 'ignore' });
  return r.error ? `socat is not installed (${(r.error as NodeJS.ErrnoException).code}); install it with apt-get install socat (.ci/run does)` : undefined;
}

async function until(what: string, ok: () => boolean, limitMs = 10000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export class PtyPair {
  #proc: ChildProcess | undefined;
  #fd: number | undefined;

  constructor(
    readonly devicePath: string,
    readonly hostPath: string,
  ) {}

  get plugged(): boolean {
    return this.#proc !== undefined;
  }

  async plug(): Promise<void> {
    if (this.#proc) return;
    const proc = spawn('socat', ['-d', '-d', `pty,rawer,echo=0,link=${this.devicePath}`, `pty,rawer,echo=0,link=${this.hostPath}`], { stdio: 'ignore' });
    this.#proc = proc;
    await until(`socat links ${this.devicePath}`, () => existsSync(this.devicePath) && existsSync(this.hostPath));
    this.#fd = openSync(this.hostPath, 'r+');
  }

  /** What the scanner sends (raw bytes, suffix included). */
  write(data: string | Buffer): void {
    if (this.#fd === undefined) throw new Error('not plugged');
    writeSync(this.#fd, typeof data === "string" ? Buffer.from(data, "utf8") : data);
  }

  /** Unplug: kill socat (SIGTERM; it removes its links) and wait until it is gone. */
  async unplug(): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    this.#proc = undefined;
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd);
      } catch {
        // already gone
      }
      this.#fd = undefined;
    }
    const gone = new Promise<void>((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve())));
    proc.kill('SIGTERM');
    // socat normally exits at once; should it sit in a blocked write, do not hang the suite on it
    const hard = setTimeout(() => proc.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(hard);
    if (proc.signalCode === 'SIGKILL') rmLinks(this.devicePath, this.hostPath);
    await until(`socat links removed ${this.devicePath}`, () => !existsSync(this.devicePath));
  }
}
