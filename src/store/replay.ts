/**
 * Replay: delivers the outbox to the home card system, each record with exactly the payload it was
 * stored with (same out_verify_no / out_verify_time), so a repeat is recognised upstream (3002).
 *
 * Pipelined, ordered: up to `window` records are in flight at once (config outbox.replayWindow,
 * default 16). Ordering rule: records are *sent* in outbox order (seq, i.e. the order they were
 * decided at the desks); answers are matched to the request that carried them and acked as they come,
 * in any order; after a retryable failure nothing new is sent and the next round starts again at
 * the oldest record not yet acknowledged — so a record is never overtaken by more than window − 1
 * later ones, and nothing is skipped. That is enough for the home system: every record is a
 * self-contained verification carrying its own out_verify_no (its duplicate key: a repeat answers
 * 3002) and its own out_verify_time (the moment of the scan, which its usage statistics count by);
 * no transaction of 附录A refers to another, so arrival order carries no meaning there.
 *
 * The link: with an upstream that keeps a circuit breaker (`upstream.link`, HttpUpstream) replay
 * waits while the link is open and, once it closes again, waits a random 0..startJitterMs before its
 * first send (a thousand sites must not come back in the same second). Without one it keeps its own
 * breaker: a network error opens it → backoff → health probe → half-open trial → closed.
 *
 * A good citizen: at most `maxPerSecond` sends per second; after a failure exponential backoff with
 * full jitter (a random 0..min(maxMs, baseMs·2^(n−1))), never shorter than the Retry-After the
 * home system gave (3003 / HTTP 429 / 503); and yielding to the desks (`busy`).
 *
 * Outcomes: 0000 and 3002 delivered; business rejections (1xxx, 2xxx, 3001, 9001, 9005) become dead
 * letters with the reason; everything else (8xxx, 3003, other 9xxx) is retried after backoff.
 * Acks are group-committed: a crash between the upstream's answer and the ack commit only means the
 * record is sent again, and the home system answers 3002 — never a second transaction.
 */
import { BadRequestError, EhcError, UpstreamAnswerError, UpstreamUnreachableError, asEhcError, isReturnCode } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import type { LinkView, Upstream, UpstreamHealth, UpstreamIdentity } from '../protocol/upstream.ts';
import type { DeferredAnswer, DeliveryOutcome, Outbox, StoredOutboxEntry } from './outbox.ts';

export type ReplayState = 'idle' | 'sending' | 'yielding' | 'backoff' | 'probing' | 'link-down' | 'start-delay' | 'stopped';
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
  /**
   * Audits a deferred record's answer before it is kept (GET /v1/verify/{out_verify_no}) or heard
   * (onDeferredResult: the scan stream, webhooks). When it rejects (audit.onFailure = refuse and the
   * trail cannot be written), the identity is withheld: what is kept and heard is that 8007 instead.
   */
  auditAnswer?: (answer: DeferredAnswer, termId: string) => Promise<void>;
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
  /** records in flight at once (default 1; the appliance passes outbox.replayWindow, 16) */
  window?: number;
  /** most sends per second (default unlimited; the appliance passes outbox.replayMaxPerSecond) */
  maxPerSecond?: number;
  /** after the link returns, wait a random 0..this before sending (default 0; appliance: outbox.replayStartJitterMs) */
  startJitterMs?: number;
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
  /** records in flight now */
  inFlight: number;
  window: number;
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
  private readonly o: Required<Pick<ReplayOptions, 'batch' | 'idlePollMs' | 'probeTimeoutMs' | 'callTimeoutMs' | 'random' | 'maxYieldMs' | 'window' | 'startJitterMs'>> & {
    minGapMs: number;
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
  private inFlight = 0;
  private nextSendAt = 0;
  /** no send before this (backoff after a failure, Retry-After) */
  private backoffUntil = 0;
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
      window: Math.max(1, opts.window ?? 1),
      startJitterMs: opts.startJitterMs ?? 0,
      minGapMs: opts.maxPerSecond ? 1000 / opts.maxPerSecond : 0,
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
      breaker: this.opts.upstream.link?.linkState ?? this.breaker,
      depth: s.depth,
      dead: s.dead,
      full: s.full,
      oldestAgeSeconds: s.oldestAgeSeconds,
      ...this.counts,
      inFlight: this.inFlight,
      window: this.o.window,
      consecutiveFailures: this.failures,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.lastDeliveredAt ? { lastDeliveredAt: this.lastDeliveredAt } : {}),
      ...(this.nextAttemptAt && (this.stateV === 'backoff' || this.stateV === 'start-delay') ? { nextAttemptAt: this.nextAttemptAt } : {}),
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
      ehc_edge_replay_in_flight: st.inFlight,
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

  /** full jitter: a random 0..min(maxMs, baseMs·2^(failures−1)) */
  private backoffMs(): number {
    const exp = Math.min(this.o.maxMs, this.o.baseMs * 2 ** Math.max(0, this.failures - 1));
    return Math.round(this.o.random() * exp);
  }

  /** wait for the link's breaker to close (true), or for stop (false) */
  private waitForLink(): Promise<boolean> {
    const link = this.link!;
    if (link.linkState === 'closed') return Promise.resolve(true);
    this.stateV = 'link-down';
    return new Promise<boolean>((resolve) => {
      let off = () => undefined as void;
      const done = (v: boolean) => {
        off();
        clearInterval(poll);
        this.wake = undefined;
        resolve(v);
      };
      off = link.onLinkChange((state) => state === 'closed' && done(true));
      const poll = setInterval(() => link.linkState === 'closed' && done(true), 1000); // safety net
      this.wake = () => done(link.linkState === 'closed');
      if (this.stopping) done(false);
    });
  }

  /** at most maxPerSecond sends per second, evenly spaced */
  private async pace(): Promise<void> {
    if (this.o.minGapMs <= 0) return;
    const now = Date.now();
    const at = Math.max(now, this.nextSendAt);
    this.nextSendAt = at + this.o.minGapMs;
    if (at > now) await this.sleep(at - now);
  }

  /** a retryable failure: back off with full jitter, at least as long as the home system asked */
  private backOff(err: EhcError | undefined): void {
    if (this.backoffUntil <= Date.now()) this.failures++; // once per round, not once per record in flight
    const asked = (err as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? 0;
    this.backoffUntil = Math.max(this.backoffUntil, Date.now() + Math.max(this.backoffMs(), asked));
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

  /** the shared link view, when its owner probes by itself (else replay probes, as without one) */
  private get link(): LinkView | undefined {
    const l = this.opts.upstream.link;
    return l?.selfProbing ? l : undefined;
  }

  private async loop(): Promise<void> {
    const link = this.link;
    while (!this.stopping) {
      if (link && link.linkState !== 'closed') {
        // one view of the link: wait for it instead of hammering a known-down upstream
        if (!(await this.waitForLink())) break;
        this.opts.log.info('upstream answers again: replaying', { depth: this.opts.outbox.stats().depth });
        this.failures = 0;
        this.backoffUntil = 0;
        const delay = Math.round(this.o.random() * this.o.startJitterMs);
        if (delay > 0) {
          this.stateV = 'start-delay';
          this.nextAttemptAt = new Date(Date.now() + delay).toISOString();
          await this.sleep(delay);
        }
        continue; // look at the link again
      }
      if (!link && this.breaker === 'open') {
        const ms = Math.max(this.backoffMs(), this.backoffUntil - Date.now());
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
      } else if (this.backoffUntil > Date.now()) {
        this.stateV = 'backoff';
        this.nextAttemptAt = new Date(this.backoffUntil).toISOString();
        await this.sleep(this.backoffUntil - Date.now());
        continue;
      }
      this.kicked = false;
      if ((await this.round(link)) === 'empty') {
        this.stateV = 'idle';
        if (!this.kicked && !this.stopping) await this.sleep(this.o.idlePollMs);
      }
    }
  }

  /**
   * One round of sending, from the oldest record not yet acknowledged: records go out in seq order
   * with up to `window` in flight, continuously — the next records are read (peek after the last one
   * sent) while earlier ones are still in flight, and what was answered is acked in group commits
   * that run beside the sends, so a batch boundary is not a pause of a round trip + fsync + peek.
   * The round ends when nothing is left to send, on a retryable failure (nothing new is sent; the
   * next round starts again at the head), when the link opens, or on stop. `empty`: there was
   * nothing to send.
   */
  private async round(link: LinkView | undefined): Promise<'empty' | 'done'> {
    const inflight = new Set<Promise<void>>();
    const commits = new Set<Promise<void>>();
    const decided: Decision[] = [];
    let halted = false;
    let failure: EhcError | undefined;
    let commitError: unknown;
    let cursor = 0; // seq of the last record sent in this round
    let peeks = 0;
    let empty = false;
    const flush = () => {
      if (decided.length === 0) return;
      const c: Promise<void> = this.commit(decided.splice(0))
        .catch((err: unknown) => {
          commitError ??= err;
          halted = true;
        })
        .finally(() => commits.delete(c));
      commits.add(c);
    };
    try {
      while (!this.stopping && !halted && !(link && link.linkState !== 'closed')) {
        let batch: StoredOutboxEntry[];
        this.kicked = false;
        try {
          batch = await this.opts.outbox.peek(this.o.batch, cursor);
        } catch (err) {
          // the outbox or the card cannot give records now: back off the same way
          failure = asEhcError(err, '8007', 'outbox peek');
          this.noteError(failure);
          this.opts.log.error('replay cannot read the outbox', { code: failure.code, reason: failure.message });
          break;
        }
        if (peeks++ === 0 && batch.length === 0) empty = true;
        if (batch.length === 0) {
          if (inflight.size === 0) break; // nothing more to send now
          await Promise.race(inflight); // records appended meanwhile are read after the next answer
          flush();
          continue;
        }
        this.stateV = 'sending';
        let yielded = 0;
        for (const rec of batch) {
          // foreground first: wait while the desks keep the loop busy, at most maxYieldMs per batch
          while (yielded < this.o.maxYieldMs && !this.stopping && !halted && this.opts.busy?.()) {
            if (yielded === 0) this.counts.yields++;
            this.stateV = 'yielding';
            flush(); // what is decided is acked before waiting
            await this.sleep(YIELD_STEP_MS);
            yielded += YIELD_STEP_MS;
          }
          if (this.stopping || halted) break;
          await this.pace();
          while (inflight.size >= this.o.window && !halted) await Promise.race(inflight);
          if (this.stopping || halted || (link && link.linkState !== 'closed')) break;
          this.stateV = 'sending';
          this.inFlight++;
          cursor = rec.seq;
          const p: Promise<void> = this.deliver(rec)
            .then(async (d) => {
              if (!d) {
                halted = true; // retryable failure: nothing new goes out; the head stays the head
                return;
              }
              // a deferred answer is committed at once, so a crash cannot lose it; usage acks share a commit
              if (d.answer) await this.commit([d]);
              else decided.push(d);
            })
            .catch((err: unknown) => {
              commitError ??= err;
              halted = true;
            })
            .finally(() => {
              this.inFlight--;
              inflight.delete(p);
            });
          inflight.add(p);
        }
        flush(); // one group commit for what was answered while this batch went out
      }
    } finally {
      await Promise.all(inflight);
      flush();
      while (commits.size > 0) await Promise.all(commits);
    }
    if (commitError) {
      // e.g. disk full on ack: the records stay and are sent again (3002 upstream)
      const e = asEhcError(commitError, '8007', 'outbox ack');
      this.noteError(e);
      this.opts.log.error('replay could not record deliveries; they will be re-sent', { code: e.code, reason: e.message });
      this.failed(e);
    } else if (failure) {
      this.failed(failure);
    }
    return empty ? 'empty' : 'done';
  }

  /** a failure that must be retried later: own breaker (no link view) or backoff */
  private failed(e: EhcError): void {
    if (this.link) this.backOff(e);
    else this.openBreaker();
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
      // once per round: the other records of the window fail the same way
      if (this.backoffUntil <= Date.now()) log.warn('replay: upstream not reachable or busy; backing off', { seq: rec.seq, code, reason: error!.message, failures: this.failures + 1 });
      this.failed(error!);
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
      return { seq: rec.seq, termId: rec.termId, outcome: { status: 'delivered', retCode: code }, answer };
    }
    log.warn('replay: the home system rejected a record; kept as a dead letter', { seq: rec.seq, code, reason: error!.message });
    return {
      seq: rec.seq,
      termId: rec.termId,
      outcome: { status: 'dead', retCode: code, reason: error!.message },
      answer: rec.kind === 'deferred' ? { outVerifyNo, retCode: code, retMsg: error!.message, answeredAt: now } : undefined,
    };
  }

  /** Audit deferred answers, ack decided records in one group commit, then count them and publish the answers. */
  private async commit(decided: Decision[]): Promise<void> {
    if (decided.length === 0) return;
    const { outbox, log, auditAnswer } = this.opts;
    if (auditAnswer) {
      await Promise.all(
        decided.map(async (d) => {
          if (!d.answer) return;
          try {
            await auditAnswer(d.answer, d.termId);
          } catch (err) {
            const e = asEhcError(err, '8007', 'audit of a deferred answer');
            log.error('replay: a deferred answer could not be audited; its identity is withheld', { code: e.code, reason: e.message });
            d.answer = { outVerifyNo: d.answer.outVerifyNo, retCode: e.code, retMsg: e.message, answeredAt: d.answer.answeredAt };
          }
        }),
      );
    }
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
  /** the record's 识读终端, for the audit of its answer */
  termId: string;
  outcome: DeliveryOutcome;
  answer?: DeferredAnswer;
}

function asCode(code: string): EhcError['code'] {
  return isReturnCode(code) ? code : '9999';
}
