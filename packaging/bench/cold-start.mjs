// Cold start to READY: runs the command given (an ehc-edge entry with its config), waits for the
// "ehc-edge ready" log line (logged right after READY=1), prints the milliseconds from spawn to that
// line, kills the process and exits. Plain JavaScript, so any node runs it; time it from outside
// with farm-bench (packaging/README.md, "Cold start").
//   node packaging/bench/cold-start.mjs -- <command> [args…]
import { spawn } from 'node:child_process';

const argv = process.argv.slice(process.argv.indexOf('--') + 1);
if (argv.length === 0) {
  console.error('usage: node packaging/bench/cold-start.mjs -- <command> [args…]');
  process.exit(2);
}
const t0 = process.hrtime.bigint();
const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NOTIFY_SOCKET: '' } });
let seen = '';
const timer = setTimeout(() => {
  console.error('cold-start: no "ehc-edge ready" within 120 s');
  child.kill('SIGKILL');
  process.exit(1);
}, 120_000);
child.stdout.on('data', (d) => {
  seen = (seen + d.toString()).slice(-65536);
  if (seen.includes('"msg":"ehc-edge ready"')) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    clearTimeout(timer);
    console.log(`ready after ${ms.toFixed(0)} ms`);
    child.kill('SIGKILL');
    process.exit(0);
  }
});
child.on('exit', (code) => {
  clearTimeout(timer);
  console.error(`cold-start: exited (${code}) before READY`);
  process.exit(1);
});
