/**
 * The circuit breaker of the link to the home card system: one view shared by verification (which
 * does not wait for an upstream that is known to be down), replay (which waits for the link) and
 * /v1/status. Rules:
 *
 *   closed     calls go out. `failures` consecutive link failures (connect / TLS / read timeout /
 *              reset / HTTP 5xx — not 3003, not business answers), or one failed probe → open
 *   open       calls fail at once (LinkOpen, 8004). After `retryMs` → half-open
 *   half-open  one trial: the health probe (a real protocol round trip, digest checked), or — when
 *              the owner runs no probes — the next call. Success → closed; failure → open again
 *
 * Any answer of the home system whose digest checks (whatever its ret_code) is a success of the link.
 */
import { EventEmitter } from 'node:events';
import type { UpstreamLinkError } from './link-errors.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerRules {
  /** consecutive link failures of calls that open the breaker */
  failures: number;
  /** time open before the next trial (probe or call) */
  retryMs: number;
}

export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  /** ISO time of the last change of state */
  since: string;
  opened: number;
  closed: number;
  /** calls answered at once because the breaker was open */
  shortCircuited: number;
  lastFailure?: { kind: string; code: string; message: string; at: string };
}

export class LinkBreaker extends EventEmitter {
  private stateV: BreakerState = 'closed';
  private consecutive = 0;
  private changedAt = Date.now();
  private counts = { opened: 0, closed: 0, shortCircuited: 0 };
  private last?: BreakerSnapshot['lastFailure'];
  private trialTaken = false;

  constructor(
    readonly rules: BreakerRules,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  get state(): BreakerState {
    return this.stateV;
  }

  /** ms since the breaker opened (0 unless open or half-open) */
  get openForMs(): number {
    return this.stateV === 'closed' ? 0 : this.now() - this.changedAt;
  }

  /** true when the open period is over and a trial may run */
  get trialDue(): boolean {
    return this.stateV === 'open' && this.now() - this.changedAt >= this.rules.retryMs;
  }

  /**
   * May a call go out now? `callIsTrial`: the owner runs no probe, so a call is the half-open trial.
   * Counts the calls refused.
   */
  allow(callIsTrial = false): boolean {
    if (this.stateV === 'closed') return true;
    if (callIsTrial && this.trialDue) {
      this.set('half-open');
      this.trialTaken = true;
      return true;
    }
    if (callIsTrial && this.stateV === 'half-open' && !this.trialTaken) {
      this.trialTaken = true;
      return true;
    }
    this.counts.shortCircuited++;
    return false;
  }

  /** a probe starts: open → half-open */
  probing(): void {
    if (this.stateV === 'open') this.set('half-open');
  }

  /** the home system answered (digest checked) */
  succeeded(): void {
    this.consecutive = 0;
    if (this.stateV !== 'closed') {
      this.counts.closed++;
      this.set('closed');
    }
  }

  /** a call failed on the link */
  callFailed(err: UpstreamLinkError): void {
    this.note(err);
    this.consecutive++;
    if (this.stateV === 'half-open' || (this.stateV === 'closed' && this.consecutive >= this.rules.failures)) this.open();
  }

  /** the probe failed: open at once */
  probeFailed(err: UpstreamLinkError): void {
    this.note(err);
    this.consecutive++;
    if (this.stateV !== 'open') this.open();
    else this.changedAt = this.now(); // stays open: the next trial is retryMs from now
  }

  snapshot(): BreakerSnapshot {
    return {
      state: this.stateV,
      consecutiveFailures: this.consecutive,
      since: new Date(this.changedAt).toISOString(),
      ...this.counts,
      ...(this.last ? { lastFailure: this.last } : {}),
    };
  }

  private note(err: UpstreamLinkError): void {
    this.last = { kind: err.linkKind, code: err.code, message: err.message, at: new Date(this.now()).toISOString() };
  }

  private open(): void {
    this.counts.opened++;
    this.set('open');
  }

  private set(state: BreakerState): void {
    this.trialTaken = false;
    this.changedAt = this.now();
    if (this.stateV === state) return;
    const from = this.stateV;
    this.stateV = state;
    this.emit('change', state, from);
  }
}
