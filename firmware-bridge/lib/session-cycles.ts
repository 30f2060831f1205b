/**
 * Session open/close cycles against an SDF library, in a process of its own (a library that corrupts
 * its session list takes this process down, not the caller's): each cycle opens `sessions` sessions at
 * once and closes them all at once, the way a pool starts and stops. Prints one JSON line
 * {cycles, ms, errors} on success; a crash shows as the process's signal.
 *
 *   node --import tsx firmware-bridge/lib/session-cycles.ts <library> <cycles> [sessions] [--unserialised]
 *
 * --unserialised turns the addon's lifecycle lock off, to show what the library does without it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAddon } from './native.ts';

export async function sessionCycles(library: string, cycles: number, sessions = 8, serialise = true): Promise<{ cycles: number; ms: number; errors: number }> {
  const { Library } = loadAddon();
  const lib = new Library(library, { eccLen: 64, serialiseLifecycle: serialise });
  await lib.openDevice();
  const t0 = performance.now();
  let errors = 0;
  for (let i = 0; i < cycles; i++) {
    const opened = await Promise.allSettled(Array.from({ length: sessions }, () => lib.openSession()));
    const live = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    errors += opened.length - live.length;
    const closed = await Promise.allSettled(live.map((s) => s.close()));
    errors += closed.filter((r) => r.status === 'rejected').length;
  }
  const ms = performance.now() - t0;
  await lib.closeDevice();
  return { cycles, ms, errors };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [library, cycles, sessions] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  sessionCycles(library!, Number(cycles ?? 1000), Number(sessions ?? 8), !process.argv.includes('--unserialised')).then(
    (r) => console.log(JSON.stringify(r)),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
