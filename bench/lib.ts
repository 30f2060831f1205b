/** Shared bench plumbing: child processes that print one JSON line when ready, temp configs. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

export interface Child<T> {
  info: T;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** node flags the appliance runs with (package.json `start`, packaging/ehc-edge-daemon) */
export const APPLIANCE_NODE_FLAGS = ['--max-semi-space-size=32'];

export function startChild<T>(script: string, args: string[] = [], nodeFlags: string[] = []): Promise<Child<T>> {
  const proc = spawn(process.execPath, [...nodeFlags, ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), '--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', (line) => {
      resolve({
        info: JSON.parse(line) as T,
        proc,
        stop: () =>
          new Promise((r) => {
            if (proc.exitCode !== null) return r();
            proc.once('exit', () => r());
            proc.kill('SIGTERM');
          }),
      });
    });
    proc.once('exit', (code) => reject(new Error(`${script} exited ${code} before it was ready`)));
  });
}

/** the state folders benchConfig made: removed when this process exits (each run's are its own) */
const benchDirs: string[] = [];
process.once('exit', () => {
  for (const dir of benchDirs) rmSync(dir, { recursive: true, force: true });
});

/** The shipped config, adjusted for a benchmark in a fresh state folder on free ports (removed when the bench's process exits). */
export function benchConfig(overrides: (doc: Record<string, any>) => void = () => {}): { file: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-bench-'));
  benchDirs.push(dir);
  const doc = JSON.parse(readFileSync('appliance.config.json', 'utf8')) as Record<string, any>;
  doc.stateDir = path.join(dir, 'state');
  doc.his.listen = '127.0.0.1:0';
  doc.log = { level: 'warn' };
  overrides(doc);
  const file = path.join(dir, 'appliance.config.json');
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return { file, dir };
}

export function machine(): Record<string, unknown> {
  return { date: new Date().toISOString(), node: process.version, cpus: (globalThis as any).navigator?.hardwareConcurrency ?? undefined };
}

/** `node --import tsx bench/<name>.ts` runs that bench alone: its figures printed, exit 1 on failure. */
export function runIfMain(moduleUrl: string, run: () => Promise<unknown>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  run().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/** CPU time (user + system, all threads) of a process in ms, from /proc; undefined where it cannot be read. */
export function processCpuMs(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}
