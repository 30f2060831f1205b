/**
 * Replay: delivers the outbox to the home card system, in order, each record with exactly the payload
 * it was stored with (same out_verify_no / out_verify_time), so a repeat is recognised upstream (3002).
 *
 * Circuit breaker: closed (sending) → a network error opens it → wait with exponential backoff and
 * jitter → health probe → half-open (one trial send) → closed on success, open again on failure.
 * Outcomes: 0000 and 3002 delivered; business rejections (1xxx, 2xxx, 3001, 9001, 9005) become dead
 * letters with the reason; everything else (8xxx, 3003, other 9xxx) is retried after backoff, and the
 * head of the queue stays the head — nothing is skipped.
 *
 * Acks are group-committed with the next batch: a crash between the upstream's answer and the ack
 * commit only means the record is sent again, and the home system answers 3002.
 */
import { BadRequestError, EhcError, UpstreamAnswerError, UpstreamUnreachableError, asEhcError, isReturnCode } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import type { Upstream, UpstreamHealth, UpstreamIdentity } from '../protocol/upstream.ts';
import type { DeferredAnswer, DeliveryOutcome, Outbox, StoredOutboxEntry } from './outbox.ts';

export type ReplayState = 'idle' | 'sending' | 'yielding' | 'backoff' | 'probing' | 'stopped';
export type BreakerState = 'closed' | 'open' | 'half-open';

/** What the replay needs of an outbox; SqliteOutbox also emits `append` so replay starts at once. */
export type ReplayOutbox = Outbox & {
  on?(event: 'append', listener: (n: number) => void): unknown;
  off?(event: 'append', listener: (n: number) => void): unknown;
  noteAttempt?(seq: number): Promise<unknown>;
  counters?: Record<string, number>;
};

export type DeferredResultListener = (outVerifyNo: string, answer: UpstreamIdentity | EhcError) => void;

export interface ReplayOptions {
  outbox: ReplayOutbox;
  upstream: Upstream;
  log: Logger;
  /** a deferred record got its answer (identity) or its final error (rejection, or 3002 without answer) */
  onDeferredResult?: DeferredResultListener;
  /** records read per peek (config outbox.replayBatch) */
  batch?: number;
  backoff?: { baseMs?: number; maxMs?: number };
  /** safety net when no append event arrives (another process appended) */
  idlePollMs?: number;
  probeTimeoutMs?: number;
  callTimeoutMs?: number;
  random?: () => number;
  /**
   * Foreground first: while this says the process is busy serving desks (the appliance passes
   * desksBusy() from src/ops/load-gauge.ts), replay waits before each send — but never longer than
   * `maxYieldMs` in a row; after that it sends a whole batch without yielding, so busy desks slow
   * replay down and never stop it.
   */
  busy?: () => boolean;
  maxYieldMs?: number;
}

export interface ReplayStatus {
  state: ReplayState;
  breaker: BreakerState;
  depth: number;
  dead: number;
  full: boolean;
  oldestAgeSeconds: number | null;
  delivered: number;
  duplicates: number;
  deadLettered: number;
  sent: number;
  retries: number;
  probes: number;
  /** times replay waited for busy desks before a send */
  yields: number;
  consecutiveFailures: number;
  lastError?: { code: string; message: string; at: string };
  lastDeliveredAt?: string;
  nextAttemptAt?: string;
}

export type Classification = 'delivered' | 'dead' | 'retry';

/** How a return code of the home system (or of our own network layer) is handled on replay. */
export function classify(code: string): Classification {
  if (code === '0000' || code === '3002') return 'delivered';
  if (/^[12]\d{3}$/.test(code) || code === '3001' || code === '9001' || code === '9005') return 'dead';
  return 'retry';
}

/**
 * How a failed delivery is handled, by the error's class: the home system not reachable → retry;
 * its own answer → by its code; a request we cannot build → dead (resending will not help); any other
 * (a card or store failure of ours, a bare EhcError) → by its code.
 */
export function classifyError(error: EhcError): Classification {
  if (error instanceof UpstreamUnreachableError) return 'retry';
  if (error instanceof UpstreamAnswerError) return classify(error.code);
  if (error instanceof BadRequestError) return 'dead';
  return classify(error.code);
}

export class Replay {
  private readonly o: Required<Pick<ReplayOptions, 'batch' | 'idlePollMs' | 'probeTimeoutMs' | 'callTimeoutMs' | 'random' | 'maxYieldMs'>> & {
    baseMs: number;
    maxMs: number;
  };
  private stateV: ReplayState = 'idle';
  private breaker: BreakerState = 'half-open'; // the first send is a trial
  private failures = 0;
  private stopping = false;
  private loopDone?: Promise<void>;
  private wake?: () => void;
  private readonly counts = { delivered: 0, duplicates: 0, deadLettered: 0, sent: 0, retries: 0, probes: 0, yields: 0 };
  private lastError?: ReplayStatus['lastError'];
  private lastDeliveredAt?: string;
  private nextAttemptAt?: string;
  private readonly onAppend = () => this.kick();

  constructor(private readonly opts: ReplayOptions) {
    this.o = {
      batch: opts.batch ?? 64,
      idlePollMs: opts.idlePollMs ?? 5000,
      probeTimeoutMs: opts.probeTimeoutMs ?? 5000,
      callTimeoutMs: opts.callTimeoutMs ?? 60_000,
      random: opts.random ?? Math.random,
      maxYieldMs: opts.maxYieldMs ?? 5000,
      baseMs: opts.backoff?.baseMs ?? 500,
      maxMs: opts.backoff?.maxMs ?? 60_000,
    };
  }

  start(): this {
    if (this.loopDone) return this;
    this.opts.outbox.on?.('append', this.onAppend);
    this.loopDone = this.loop().catch((err) => {
      this.opts.log.error('replay loop stopped on an unexpected error', { error: err });
    });
    return this;
  }

  /**
   * Work arrived: stop idling now. `force` (operator "retry now") also cuts a backoff short; appends
   * alone never do, so an outage is not hammered by every new record.
   */
  kick(force = false): void {
    this.kicked = true;
    if (force || this.stateV === 'idle') this.wakeNow();
  }
  private kicked = false;

  private wakeNow(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Stops after the record in flight has its answer and its ack is committed. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.opts.outbox.off?.('append', this.onAppend);
    this.wakeNow();
    await this.loopDone;
    this.stateV = 'stopped';
  }

  status(): ReplayStatus {
    const s = this.opts.outbox.stats();
    return {
      state: this.stateV,
      breaker: this.breaker,
      depth: s.depth,
      dead: s.dead,
      full: s.full,
      oldestAgeSeconds: s.oldestAgeSeconds,
      ...this.counts,
      consecutiveFailures: this.failures,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.lastDeliveredAt ? { lastDeliveredAt: this.lastDeliveredAt } : {}),
      ...(this.nextAttemptAt && this.stateV === 'backoff' ? { nextAttemptAt: this.nextAttemptAt } : {}),
    };
  }

  /** Prometheus-style counters and gauges for /metrics. */
  metrics(): Record<string, number> {
    const st = this.status();
    const oc = this.opts.outbox.counters ?? {};
    return {
      ehc_edge_outbox_depth: st.depth,
      ehc_edge_outbox_bytes: this.opts.outbox.stats().bytes,
      ehc_edge_outbox_dead: st.dead,
      ehc_edge_outbox_full: st.full ? 1 : 0,
      ehc_edge_outbox_oldest_age_seconds: st.oldestAgeSeconds ?? 0,
      ehc_edge_outbox_appended_total: oc.appended ?? 0,
      ehc_edge_outbox_rejected_full_total: oc.rejectedFull ?? 0,
      ehc_edge_outbox_write_errors_total: oc.writeErrors ?? 0,
      ehc_edge_replay_sent_total: st.sent,
      ehc_edge_replay_delivered_total: st.delivered,
      ehc_edge_replay_duplicates_total: st.duplicates,
      ehc_edge_replay_dead_total: st.deadLettered,
      ehc_edge_replay_retries_total: st.retries,
      ehc_edge_replay_probes_total: st.probes,
      ehc_edge_replay_yields_total: st.yields,
      ehc_edge_replay_breaker_open: st.breaker === 'open' ? 1 : 0,
    };
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private backoffMs(): number {
    const exp = Math.min(this.o.maxMs, this.o.baseMs * 2 ** Math.max(0, this.failures - 1));
    return Math.round(exp / 2 + (this.o.random() * exp) / 2); // "equal jitter": [exp/2, exp]
  }

  private noteError(e: EhcError): void {
    this.lastError = { code: e.code, message: e.message, at: new Date().toISOString() };
  }

  private async probe(): Promise<boolean> {
    this.counts.probes++;
    this.stateV = 'probing';
    let timer: NodeJS.Timeout | undefined;
    try {
      // an upstream that can probe on demand (HttpUpstream.probe) is asked afresh; health() may be cached
      const u = this.opts.upstream as Upstream & { probe?: () => Promise<UpstreamHealth> };
      const h = await Promise.race([
        typeof u.probe === 'function' ? u.probe() : u.health(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new EhcError('8004', 'health probe timed out')), this.o.probeTimeoutMs);
        }),
      ]);
      if (!h.reachable) this.noteError(new EhcError('8004', `upstream unreachable: ${h.lastError ?? h.url}`));
      return h.reachable;
    } catch (err) {
      this.noteError(asEhcError(err, '8004', 'health probe'));
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.breaker === 'open') {
        const ms = this.backoffMs();
        this.stateV = 'backoff';
        this.nextAttemptAt = new Date(Date.now() + ms).toISOString();
        await this.sleep(ms);
        if (this.stopping) break;
        if (!(await this.probe())) {
          this.failures++;
          continue;
        }
        this.breaker = 'half-open';
        this.opts.log.info('upstream answers again: replaying', { depth: this.opts.outbox.stats().depth });
      }
      let batch: StoredOutboxEntry[];
      this.kicked = false;
      try {
        batch = await this.opts.outbox.peek(this.o.batch);
      } catch (err) {
        // the outbox or the card cannot give records now: back off the same way
        const e = asEhcError(err, '8007', 'outbox peek');
        this.noteError(e);
        this.opts.log.error('replay cannot read the outbox', { code: e.code, reason: e.message });
        this.openBreaker();
        continue;
      }
      if (batch.length === 0) {
        this.stateV = 'idle';
        if (!this.kicked && !this.stopping) await this.sleep(this.o.idlePollMs);
        continue;
      }
      this.stateV = 'sending';
      const decided: Decision[] = [];
      try {
        let yielded = 0;
        for (const rec of batch) {
          // foreground first: wait while the desks keep the loop busy, at most maxYieldMs before a batch
          while (yielded < this.o.maxYieldMs && !this.stopping && this.opts.busy?.()) {
            if (yielded === 0) this.counts.yields++;
            this.stateV = 'yielding';
            await this.commit(decided.splice(0)); // what is decided is acked before waiting
            await this.sleep(YIELD_STEP_MS);
            yielded += YIELD_STEP_MS;
          }
          if (this.stopping) break;
          this.stateV = 'sending';
          const d = await this.deliver(rec);
          if (!d) break; // retryable failure: breaker is open, keep the order
          decided.push(d);
          // a deferred answer is committed at once, so a crash cannot lose it; usage acks share a commit
          if (d.answer) await this.commit(decided.splice(0));
          if (this.stopping) break;
        }
        await this.commit(decided.splice(0));
      } catch (err) {
        // e.g. disk full on ack: the records stay and are sent again (3002 upstream)
        const e = asEhcError(err, '8007', 'outbox ack');
        this.noteError(e);
        this.opts.log.error('replay could not record deliveries; they will be re-sent', { code: e.code, reason: e.message });
        this.openBreaker();
      }
    }
  }

  private openBreaker(): void {
    this.breaker = 'open';
    this.failures++;
  }

  /** Send one record and decide its outcome; undefined when it must be retried later. */
  private async deliver(rec: StoredOutboxEntry): Promise<Decision | undefined> {
    const { upstream, outbox, log } = this.opts;
    this.counts.sent++;
    let identity: UpstreamIdentity | undefined;
    let error: EhcError | undefined;
    try {
      identity = await upstream.call(rec.method, rec.biz, { termId: rec.termId, signal: AbortSignal.timeout(this.o.callTimeoutMs) });
    } catch (err) {
      error = asEhcError(err, '8009', 'upstream call');
    }
    const code = error ? error.code : '0000';
    const what = error ? classifyError(error) : 'delivered';
    if (what === 'retry') {
      this.counts.retries++;
      this.noteError(error!);
      void outbox.noteAttempt?.(rec.seq).catch(() => undefined);
      log.warn('replay: upstream not reachable or busy; backing off', { seq: rec.seq, code, reason: error!.message, failures: this.failures + 1 });
      this.openBreaker();
      return undefined;
    }
    this.breaker = 'closed';
    this.failures = 0;
    const outVerifyNo = rec.biz.out_verify_no;
    const now = new Date().toISOString();
    if (what === 'delivered') {
      if (code === '3002') this.counts.duplicates++;
      const answer: DeferredAnswer | undefined =
        rec.kind !== 'deferred'
          ? undefined
          : code === '0000'
            ? { outVerifyNo, retCode: '0000', retMsg: 'ok', identity: identity ?? {}, answeredAt: now }
            : { outVerifyNo, retCode: '3002', retMsg: 'the home system already had this out_verify_no; its first answer was not kept', answeredAt: now };
      return { seq: rec.seq, outcome: { status: 'delivered', retCode: code }, answer };
    }
    log.warn('replay: the home system rejected a record; kept as a dead letter', { seq: rec.seq, code, reason: error!.message });
    return {
      seq: rec.seq,
      outcome: { status: 'dead', retCode: code, reason: error!.message },
      answer: rec.kind === 'deferred' ? { outVerifyNo, retCode: code, retMsg: error!.message, answeredAt: now } : undefined,
    };
  }

  /** Ack decided records in one group commit, then count them and publish deferred answers. */
  private async commit(decided: Decision[]): Promise<void> {
    if (decided.length === 0) return;
    const { outbox, log } = this.opts;
    await Promise.all(decided.map((d) => outbox.ack(d.seq, d.outcome, d.answer)));
    const now = new Date().toISOString();
    for (const d of decided) {
      if (d.outcome.status === 'delivered') {
        this.counts.delivered++;
        this.lastDeliveredAt = now;
      } else {
        this.counts.deadLettered++;
      }
      if (d.answer && this.opts.onDeferredResult) {
        const a = d.answer;
        const published = a.retCode === '0000' ? (a.identity ?? {}) : new EhcError(asCode(a.retCode), a.retMsg);
        try {
          this.opts.onDeferredResult(a.outVerifyNo, published);
        } catch (err) {
          log.error('onDeferredResult listener threw', { error: err });
        }
      }
    }
  }
}

/** how long replay sleeps between looks at the foreground load while yielding */
const YIELD_STEP_MS = 50;

interface Decision {
  seq: number;
  outcome: DeliveryOutcome;
  answer?: DeferredAnswer;
}

function asCode(code: string): EhcError['code'] {
  return isReturnCode(code) ? code : '9999';
}
