/**
 * Push to the HIS: every scan result (and refusal) of a target's station is POSTed to its URL,
 * signed (src/webhook/sign.ts), from the durable journal (src/webhook/journal.ts), one delivery in
 * flight per target, in order. A 2xx answer is delivered; anything else (network error, timeout,
 * 3xx/4xx/5xx) is retried after a full-jitter exponential backoff (0.5 s doubling up to
 * `webhooks.retryMaxMs`), for ever: nothing queued is dropped. The scan path only appends to the
 * journal and never waits on delivery. State per target in /v1/status `webhooks`.
 */
import type { Logger } from '../platform/log.ts';
import type { WebhookJournal } from './journal.ts';
import { signWebhook } from './sign.ts';

export interface WebhookTarget {
  name: string;
  url: string;
  secret: string;
  /** only results of this station (all stations when absent) */
  station?: string;
  timeoutMs: number;
}

export interface TargetState {
  name: string;
  url: string;
  station: string | null;
  queued: number;
  delivered: number;
  failures: number;
  refused: number;
  last_error: string | null;
  last_delivered_at: string | null;
  state: 'idle' | 'delivering' | 'retrying';
}

export interface WebhookEvent {
  type: string;
  id: number;
  scannerId: string;
  station?: string;
  data: Record<string, unknown>;
}

export class WebhookDelivery {
  readonly #state = new Map<string, TargetState>();
  readonly #wake = new Map<string, () => void>();
  #stopped = false;
  readonly #loops: Promise<void>[] = [];

  constructor(
    private readonly journal: WebhookJournal,
    private readonly targets: readonly WebhookTarget[],
    private readonly options: { retryMaxMs: number; log: Logger; fetch?: typeof fetch },
  ) {
    for (const t of targets) {
      this.#state.set(t.name, { name: t.name, url: t.url, station: t.station ?? null, queued: 0, delivered: 0, failures: 0, refused: 0, last_error: null, last_delivered_at: null, state: 'idle' });
    }
  }

  start(): this {
    for (const t of this.targets) this.#loops.push(this.#run(t));
    return this;
  }

  /** Queue a stream event for every target whose station it matches; never throws, never blocks the caller. */
  offer(ev: WebhookEvent): void {
    if (ev.type !== 'result' && ev.type !== 'error') return;
    for (const t of this.targets) {
      if (t.station !== undefined && ev.station !== t.station) continue;
      const body = JSON.stringify({ event: ev.type, event_id: ev.id, station: ev.station ?? null, scanner: ev.scannerId, ...ev.data });
      this.journal
        .append(t.name, body)
        .then((ok) => {
          if (!ok) {
            this.#state.get(t.name)!.refused++;
            this.options.log.error('webhook journal full: a result was not queued for the HIS', { target: t.name, event_id: ev.id });
          }
          this.#wake.get(t.name)?.();
        })
        .catch((err) => {
          this.#state.get(t.name)!.refused++;
          this.options.log.error('webhook journal: a result could not be stored', { target: t.name, event_id: ev.id, error: err });
        });
    }
  }

  status(): TargetState[] {
    return this.targets.map((t) => ({ ...this.#state.get(t.name)!, queued: this.journal.queuedFor(t.name) }));
  }

  async #run(t: WebhookTarget): Promise<void> {
    const st = this.#state.get(t.name)!;
    let attempt = 0;
    while (!this.#stopped) {
      const next = await this.journal.next(t.name).catch((err) => {
        st.last_error = `journal: ${(err as Error).message}`;
        return undefined;
      });
      if (!next) {
        st.state = 'idle';
        if (this.journal.queuedFor(t.name) > 0) continue; // appended while we looked: no wake-up is lost
        await new Promise<void>((resolve) => this.#wake.set(t.name, resolve));
        continue;
      }
      st.state = attempt ? 'retrying' : 'delivering';
      const error = await this.#post(t, next.entry.id, next.body);
      if (error === undefined) {
        await this.journal.delivered(next.entry);
        st.delivered++;
        st.last_delivered_at = new Date().toISOString();
        attempt = 0;
        continue;
      }
      st.failures++;
      st.last_error = error;
      if (attempt === 0) this.options.log.warn('webhook delivery failed; retrying with backoff', { target: t.name, error });
      attempt++;
      const ceiling = Math.min(this.options.retryMaxMs, 500 * 2 ** Math.min(attempt, 20));
      await this.#sleep(t.name, Math.random() * ceiling);
    }
  }

  async #post(t: WebhookTarget, deliveryId: string, body: string): Promise<string | undefined> {
    try {
      const res = await (this.options.fetch ?? fetch)(t.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', ...signWebhook(t.secret, deliveryId, body) },
        body,
        signal: AbortSignal.timeout(t.timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? undefined : `HTTP ${res.status} from the webhook`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return e.name === 'TimeoutError' ? `no answer within ${t.timeoutMs} ms` : `${e.cause?.code ?? e.name}: ${e.message}`;
    }
  }

  #sleep(target: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake.set(target, () => {
        if (this.#stopped) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const wake of this.#wake.values()) wake();
    await Promise.all(this.#loops);
    await this.journal.close();
  }
}
