/**
 * A fixed pool of SDF sessions: one call per session at a time (SDF sessions are not re-entrant),
 * callers beyond the pool size wait in FIFO order. close() stops accepting, waits for every accepted
 * call (running or waiting) to settle, then hands the sessions back for closing.
 */
export class PoolClosedError extends Error {
  override readonly name = 'PoolClosedError';
}

export class SessionPool<S> {
  private readonly idle: S[];
  private readonly waiters: Array<(s: S) => void> = [];
  private accepted = 0;
  private closing = false;
  private drained: (() => void) | undefined;

  constructor(private readonly all: readonly S[]) {
    if (all.length === 0) throw new Error('a session pool needs at least one session');
    this.idle = [...all];
  }

  get size(): number {
    return this.all.length;
  }
  /** calls accepted and not yet settled */
  get pending(): number {
    return this.accepted;
  }
  get closed(): boolean {
    return this.closing;
  }

  async use<T>(fn: (session: S) => Promise<T>): Promise<T> {
    if (this.closing) throw new PoolClosedError('session pool is closed');
    this.accepted++;
    try {
      const session = this.idle.pop() ?? (await new Promise<S>((resolve) => this.waiters.push(resolve)));
      try {
        return await fn(session);
      } finally {
        const next = this.waiters.shift();
        if (next) next(session);
        else this.idle.push(session);
      }
    } finally {
      this.accepted--;
      if (this.closing && this.accepted === 0) this.drained?.();
    }
  }

  /** Stop accepting calls; resolves with every session once all accepted calls have settled. */
  async close(): Promise<readonly S[]> {
    this.closing = true;
    if (this.accepted > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    return this.all;
  }
}
