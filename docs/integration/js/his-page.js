// ehc-edge from a browser HIS page on another origin (list that origin in his.cors.origins).
// The API key belongs to the HIS back end: a page that holds it shows it to anyone at the desk's
// browser. Prefer: the HIS back end takes the stream ticket (POST /v1/stream-tickets) and gives the
// page only the ticket; verify calls go through the back end, or the page holds a key for this desk only.
const APPLIANCE = 'http://127.0.0.1:8080';

export async function verify(apiKey, qrText) {
  const res = await fetch(`${APPLIANCE}/v1/verify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ehealth_code: qrText }),
  });
  return { status: res.status, body: await res.json() }; // 200 identity · 422 refused (ret_code) · 503 down
}

/** Follows one station's scans. `getTicket()` returns POST /v1/stream-tickets's answer (a new one per connect). */
export function followStation(getTicket, onResult, onRefused) {
  let lastEventId = null;
  let source = null;
  const connect = async () => {
    const t = await getTicket();
    source = new EventSource(APPLIANCE + t.stream_url + (lastEventId ? `&lastEventId=${encodeURIComponent(lastEventId)}` : ''));
    const take = (fn) => (ev) => { lastEventId = ev.lastEventId || lastEventId; fn(JSON.parse(ev.data)); };
    // the first event of a stream opened without lastEventId: its position, so a reconnect before any result misses nothing
    source.addEventListener('ready', (ev) => { lastEventId = ev.lastEventId || lastEventId; });
    source.addEventListener('result', take(onResult));
    source.addEventListener('error', take(onRefused)); // a refused code: an SSE event named "error" with data
    source.onerror = (ev) => {
      if (ev instanceof MessageEvent) return; // that was the event above, not the connection
      source.close(); // tickets are single-use: reconnect with a new one, resuming after lastEventId
      setTimeout(connect, 2000);
    };
  };
  connect();
  return () => source && source.close();
}
