/** A minimal SSE reader over fetch, for tests and the bench. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
  receivedAt: number;
}

export interface SseClient {
  events: SseEvent[];
  status: number;
  /** resolves once `pred` holds for the events received so far */
  until(pred: (events: SseEvent[]) => boolean, limitMs?: number): Promise<void>;
  onEvent?: (ev: SseEvent) => void;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: ac.signal });
  const events: SseEvent[] = [];
  const waiters = new Set<() => void>();
  const client: SseClient = {
    events,
    status: res.status,
    async until(pred, limitMs = 10000) {
      if (pred(events)) return;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SSE: condition not met after ${limitMs} ms (${events.length} events)`));
        }, limitMs);
        const check = () => {
          if (pred(events)) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
      });
    },
    close() {
      ac.abort();
    },
  };
  if (!res.ok || !res.body) return client;
  void (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const ev: SseEvent = { event: 'message', data: '', receivedAt: performance.now() };
          let hasData = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'event') ev.event = value;
            else if (field === 'id') ev.id = value;
            else if (field === 'data') {
              ev.data += (hasData ? '\n' : '') + value;
              hasData = true;
            }
          }
          if (!hasData) continue;
          events.push(ev);
          client.onEvent?.(ev);
          for (const w of [...waiters]) w();
        }
      }
    } catch {
      // aborted
    }
  })();
  return client;
}
