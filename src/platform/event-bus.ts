/**
 * One typed event bus (the zigbee2mqtt pattern): every listener is registered under its owner's name,
 * `removeOwner(owner)` takes all of one component's listeners away when it stops, and a listener that
 * throws is reported through `onError` — it never stops the other listeners or the emitter.
 *
 *   const bus = new EventBus<{ verified: { ms: number } }>((event, owner, err) => log.warn(…));
 *   bus.on('metrics', 'verified', (e) => …);
 *   bus.emit('verified', { ms: 3 });
 *   bus.removeOwner('metrics');
 */
export type Listener<T> = (payload: T) => void;

interface Entry {
  owner: string;
  listener: Listener<never>;
}

export class EventBus<Events extends { [K in keyof Events]: unknown }> {
  readonly #listeners = new Map<keyof Events, Entry[]>();

  constructor(private readonly onError: (event: string, owner: string, error: unknown) => void = () => undefined) {}

  on<K extends keyof Events>(owner: string, event: K, listener: Listener<Events[K]>): void {
    const list = this.#listeners.get(event) ?? [];
    list.push({ owner, listener: listener as Listener<never> });
    this.#listeners.set(event, list);
  }

  /** Removes every listener `owner` registered, on every event. */
  removeOwner(owner: string): void {
    for (const [event, list] of this.#listeners) {
      const kept = list.filter((e) => e.owner !== owner);
      if (kept.length) this.#listeners.set(event, kept);
      else this.#listeners.delete(event);
    }
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    for (const { owner, listener } of [...list]) {
      try {
        (listener as Listener<Events[K]>)(payload);
      } catch (err) {
        this.onError(String(event), owner, err);
      }
    }
  }

  listenerCount(event?: keyof Events): number {
    if (event !== undefined) return this.#listeners.get(event)?.length ?? 0;
    let n = 0;
    for (const list of this.#listeners.values()) n += list.length;
    return n;
  }
}
