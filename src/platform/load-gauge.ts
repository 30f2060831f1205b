/**
 * How busy the event loop is: event-loop utilization (ELU) over the last sampling window, the share of
 * time the loop spent running callbacks instead of waiting for I/O. 1.0 means every desk request is
 * already queueing behind others, so background work (replay) should wait its turn.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export class EventLoopLoad {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private value = 0;
  private timer?: NodeJS.Timeout;

  /** Samples every `intervalMs`; the timer never keeps the process alive. */
  start(intervalMs = 250): this {
    this.timer ??= setInterval(() => this.sample(), intervalMs).unref();
    return this;
  }

  sample(): number {
    const now = performance.eventLoopUtilization();
    this.value = performance.eventLoopUtilization(now, this.last).utilization;
    this.last = now;
    return this.value;
  }

  /** ELU of the last complete window, 0…1. */
  get utilization(): number {
    return this.value;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** When the desks last had a verification answered: replay only gives way while they are active. */
export class ForegroundActivity {
  private last = -Infinity;

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** one verification answered (or refused) for a desk, kiosk or HIS caller */
  note(): void {
    this.last = this.clock();
  }

  activeWithin(ms: number): boolean {
    return this.clock() - this.last <= ms;
  }
}

/**
 * Replay's `busy`: the loop is more than `above` utilized AND desks were served within `activeMs`.
 * Replay's own work also raises the utilization; without the second condition it would slow itself
 * down when nothing else runs.
 */
export function desksBusy(load: Pick<EventLoopLoad, 'utilization'>, desks: Pick<ForegroundActivity, 'activeWithin'>, above: number, activeMs = 1000): () => boolean {
  return () => load.utilization > above && desks.activeWithin(activeMs);
}
