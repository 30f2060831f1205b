/**
 * Loaded into the uvu process by test/run.ts. When the runner finds the process still alive after uvu's
 * summary it sends SIGUSR2 before stopping it: this prints what keeps the event loop alive (sockets with
 * their addresses, servers, timers, child processes), so the forgotten handle can be found from CI output.
 */
process.on('SIGUSR2', () => {
  const lines: string[] = [`lingering resources: ${process.getActiveResourcesInfo().join(', ')}`];
  // _getActiveHandles is undocumented but stable since Node 0.x and the only way to see each handle's details
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  for (const h of handles) {
    const name = (h as object)?.constructor?.name ?? typeof h;
    const s = h as {
      localAddress?: string; localPort?: number; remoteAddress?: string; remotePort?: number;
      address?: () => unknown; pid?: number; spawnfile?: string; fd?: number;
    };
    if ((name === 'Socket' || name === 'WriteStream') && (s.fd === 1 || s.fd === 2)) continue; // our own stdout/stderr
    if (name === 'Socket' || name === 'TLSSocket') {
      lines.push(`  ${name} ${s.localAddress ?? '?'}:${s.localPort ?? '?'} -> ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}${s.fd !== undefined ? ` fd ${s.fd}` : ''}`);
    } else if (name === 'Server') {
      let addr: unknown;
      try { addr = s.address?.(); } catch { addr = '?'; }
      lines.push(`  Server ${JSON.stringify(addr)}`);
    } else if (name === 'ChildProcess') {
      lines.push(`  ChildProcess pid ${s.pid} ${s.spawnfile ?? ''}`);
    } else {
      lines.push(`  ${name}`);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
});
