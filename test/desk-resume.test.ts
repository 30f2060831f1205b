/**
 * The desk page's resume (src/his/desk-page/desk.js), run in a vm with a stand-in DOM, fetch and
 * EventSource: every reconnect takes a new ticket and resumes after the last id the page was given,
 * including the `ready` position of a stream that has not carried any other event yet (a reconnect
 * then used to start at "now" and lost the results that came in between). The stream side (the ready
 * event and the resume from its id on the real route) is in scan-fanout.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { createContext, runInContext } from 'node:vm';

const DESK_JS = readFileSync(new URL('../src/his/desk-page/desk.js', import.meta.url), 'utf8');

class FakeEvent {
  constructor(readonly type: string) {}
}
class FakeMessageEvent extends FakeEvent {
  constructor(
    type: string,
    readonly init: { data: string; lastEventId?: string },
  ) {
    super(type);
  }
  get data() {
    return this.init.data;
  }
  get lastEventId() {
    return this.init.lastEventId ?? '';
  }
}

interface Source {
  url: string;
  closed: boolean;
  onopen?: () => void;
  onerror?: (ev: FakeEvent) => void;
  listeners: Map<string, Array<(ev: FakeMessageEvent) => void>>;
  emit(type: string, data: unknown, id?: string): void;
}

function desk() {
  const elements = new Map<string, Record<string, unknown>>();
  const el = (id: string) => {
    if (!elements.has(id)) elements.set(id, { hidden: false, className: '', textContent: '', value: '', addEventListener: () => {} });
    return elements.get(id)!;
  };
  const sources: Source[] = [];
  const timers: Array<() => void> = [];
  let tickets = 0;
  class EventSource implements Source {
    closed = false;
    onopen?: () => void;
    onerror?: (ev: FakeEvent) => void;
    listeners = new Map<string, Array<(ev: FakeMessageEvent) => void>>();
    constructor(readonly url: string) {
      sources.push(this);
    }
    addEventListener(type: string, fn: (ev: FakeMessageEvent) => void) {
      this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
    }
    close() {
      this.closed = true;
    }
    emit(type: string, data: unknown, id?: string) {
      for (const fn of this.listeners.get(type) ?? []) fn(new FakeMessageEvent(type, { data: JSON.stringify(data), lastEventId: id }));
    }
  }
  const json = (body: unknown) => ({ status: 200, json: async () => body });
  const context = createContext({
    document: { getElementById: el },
    location: { search: '?station=desk-1' },
    sessionStorage: { getItem: () => 'desk-key', setItem: () => {}, removeItem: () => {} },
    fetch: async (path: string) => (path === '/v1/scanners' ? json({ scanners: [] }) : json({ stream_url: `/v1/scans?station=desk-1&ticket=t${++tickets}` })),
    EventSource,
    Event: FakeEvent,
    MessageEvent: FakeMessageEvent,
    setTimeout: (fn: () => void) => timers.push(fn),
    clearTimeout: () => {},
    URLSearchParams,
    Date,
    JSON,
  });
  runInContext(DESK_JS, context);
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  /** the connection fails (a plain Event), the page's retry timer fires, and the page has its next source */
  const reconnect = async () => {
    const n = sources.length;
    sources.at(-1)!.onerror!(new FakeEvent('error'));
    timers.shift()!();
    await settle();
    assert.is(sources.length, n + 1, 'the page opened a new stream');
    return sources.at(-1)!;
  };
  return { sources, el, settle, reconnect };
}

test('desk page: a reconnect before any result resumes from the ready position of the first stream', async () => {
  const d = desk();
  await d.settle();
  assert.is(d.sources.length, 1);
  const first = d.sources[0]!;
  assert.not.match(first.url, /lastEventId/, 'the first stream has no position yet');
  first.onopen!();
  first.emit('ready', { lastEventId: 41 }, '41');
  const second = await d.reconnect();
  assert.match(second.url, /^\/v1\/scans\?station=desk-1&ticket=t2&lastEventId=41$/, 'a new ticket, resuming after the ready id');
  assert.ok(first.closed, 'the failed source was closed');
});

test('desk page: after a result the reconnect resumes from the result, and a later ready never moves it back', async () => {
  const d = desk();
  await d.settle();
  const first = d.sources[0]!;
  first.emit('ready', { lastEventId: 41 }, '41');
  first.emit('result', { ret_code: '0000', user_name: '陈俊海', id_no: '350322199008207715', id_type: '01', decided_by: 'local' }, '57');
  assert.is(d.el('name').textContent, '陈*海');
  const second = await d.reconnect();
  assert.match(second.url, /&lastEventId=57$/);
  // a resumed stream gets no ready (it has its position); the next reconnect keeps 57
  const third = await d.reconnect();
  assert.match(third.url, /&lastEventId=57$/);
});

test.run();
