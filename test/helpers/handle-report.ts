/**
 * Loaded into the uvu process by test/run.ts. When the runner finds the process still alive after uvu's
 * summary it sends SIGUSR2 before stopping it: this prints what keeps the event loop alive (sockets with
 * their addresses, servers, timers, child processes), so the forgotten handle can be found from CI output.
 */
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// the checkout this runs from (CI clones anywhere): frames in it, outside node_modules, name the origin
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..') + path.sep;
function callerFrame(dirs: RegExp): string | undefined {
  const frame = new Error().stack?.split('\n').find((l) => {
    const at = l.indexOf(root);
    return at >= 0 && dirs.test(l.slice(at + root.length)) && !l.includes('handle-report') && !l.includes('node_modules');
  });
  return frame?.trim().replace(/^at /, '');
}

// each server remembers the test-file line that started it, so a connection left open names its test
const origin = new WeakMap<object, string>();
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
  const frame = callerFrame(/^(test|bench)\//);
  if (frame) origin.set(this, frame);
  return (listen as (...a: unknown[]) => net.Server).apply(this, args);
} as typeof net.Server.prototype.listen;

// each pending timer remembers where it was set (the first frame in the project's own code), so timers
// that keep the process alive are reported by origin
const pendingTimers = new Map<NodeJS.Timeout, string>();
const setBy = () => callerFrame(/^(src|demo|test|bench|drivers|tools)\//) ?? 'outside the project';
const realSetTimeout = globalThis.setTimeout;
const realSetInterval = globalThis.setInterval;
const realClearTimeout = globalThis.clearTimeout;
globalThis.setTimeout = Object.assign(function (this: unknown, callback: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) {
  const timer: NodeJS.Timeout = realSetTimeout((...a: unknown[]) => {
    pendingTimers.delete(timer);
    callback(...a);
  }, ms, ...args);
  pendingTimers.set(timer, `${setBy()} (${ms ?? 0} ms)`);
  return timer;
}, realSetTimeout) as typeof globalThis.setTimeout; // keeps util.promisify's custom form
globalThis.setInterval = function (this: unknown, callback: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) {
  const timer: NodeJS.Timeout = realSetInterval(callback, ms, ...args);
  pendingTimers.set(timer, `${setBy()} (every ${ms ?? 0} ms)`);
  return timer;
} as typeof globalThis.setInterval;
// Node's clearTimeout and clearInterval clear either kind
const forget = function (timer?: NodeJS.Timeout | string | number) {
  if (timer && typeof timer === 'object') pendingTimers.delete(timer);
  return realClearTimeout(timer as NodeJS.Timeout);
};
globalThis.clearTimeout = forget as typeof globalThis.clearTimeout;
globalThis.clearInterval = forget as typeof globalThis.clearInterval;

process.on('SIGUSR2', () => {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  const lines: string[] = [`lingering resources: ${[...counts].map(([r, n]) => `${r} × ${n}`).join(', ')}`];
  // _getActiveHandles is undocumented but stable since Node 0.x and the only way to see each handle's details
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  for (const h of handles) {
    const name = (h as object)?.constructor?.name ?? typeof h;
    const s = h as {
      localAddress?: string; localPort?: number; remoteAddress?: string; remotePort?: number;
      address?: () => unknown; pid?: number; spawnfile?: string; fd?: number;
      _server?: { address(): unknown } | null; _httpMessage?: { method?: string; path?: string } | null;
    };
    if ((name === 'Socket' || name === 'WriteStream') && (s.fd === 1 || s.fd === 2)) continue; // our own stdout/stderr
    if (name === 'Socket' || name === 'TLSSocket') {
      // a socket a server accepted names that server (closed or not); a client socket its last request
      let side = '';
      if (s._server) side = ' accepted by a server' + (s._server.address() ? ` listening on ${JSON.stringify(s._server.address())}` : ' that was closed (its connections were not)') + ` started ${origin.get(s._server) ?? 'outside test/'}`;
      else if (s._httpMessage) side = ` client of ${s._httpMessage.method ?? ''} ${s._httpMessage.path ?? ''}`;
      lines.push(`  ${name} ${s.localAddress ?? '?'}:${s.localPort ?? '?'} -> ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}${side}`);
    } else if (name === 'Server') {
      let addr: unknown;
      try { addr = s.address?.(); } catch { addr = '?'; }
      lines.push(`  Server ${JSON.stringify(addr)} started ${origin.get(h as object) ?? 'outside test/'}`);
    } else if (name === 'ChildProcess') {
      lines.push(`  ChildProcess pid ${s.pid} ${s.spawnfile ?? ''}`);
    } else {
      lines.push(`  ${name}`);
    }
  }
  const origins = new Map<string, number>();
  for (const [timer, where] of pendingTimers) {
    if (timer.hasRef()) origins.set(where, (origins.get(where) ?? 0) + 1);
  }
  for (const [where, n] of [...origins].sort((a, b) => b[1] - a[1]).slice(0, 8)) lines.push(`  ${n} pending timer(s) set at ${where}`);
  process.stdout.write(lines.join('\n') + '\n');
});
