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
