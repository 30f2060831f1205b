/** The CLI's dispatcher run in-process: `env` laid over process.env while it runs, what it printed collected. */
import { main as dispatch } from '../../tools/ehc-edge.ts';

export type Env = Record<string, string | undefined>;

export async function captureCli(argv: string[], env: Env = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const [ow, ew, log, error] = [process.stdout.write, process.stderr.write, console.log, console.error];
  const set = (vars: Env) => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  set(env);
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  console.log = (...a: unknown[]) => void out.push(a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void err.push(a.join(' ') + '\n');
  try {
    const code = await dispatch(argv);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    [process.stdout.write, process.stderr.write, console.log, console.error] = [ow, ew, log, error];
    set(saved);
  }
}
