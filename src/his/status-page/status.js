// ehc-edge status page: polls the authenticated /v1/status and renders it. No framework; text only
// (textContent, never innerHTML), so nothing in the data can become markup.
'use strict';
(function () {
  const API = document.querySelector('meta[name="ehc-status-api"]').content;
  const KEY = 'ehc-edge.status.key';
  const params = new URLSearchParams(location.search);
  const interval = Math.max(500, Number(params.get('interval')) || 2000);
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let lastOk = 0;

  const fmtAge = (seconds) => {
    if (seconds === null || seconds === undefined) return '–';
    const s = Math.round(seconds);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  };
  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
  const ago = (iso, now) => (iso ? fmtAge((Date.parse(now) - Date.parse(iso)) / 1000) + ' ago' : 'never');

  function setText(id, text) { $(id).textContent = text; }
  function tile(id, cls) { $(id).className = 'tile ' + cls; }
  function fillTable(id, rows, empty) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      const tr = body.insertRow();
      const td = tr.insertCell();
      td.colSpan = $(id).tHead.rows[0].cells.length;
      td.className = 'empty';
      td.textContent = empty;
      return;
    }
    for (const cells of rows) {
      const tr = body.insertRow();
      for (const c of cells) {
        const td = tr.insertCell();
        const [text, cls] = Array.isArray(c) ? c : [c, ''];
        td.textContent = text === undefined || text === null ? '' : String(text);
        if (cls) td.className = cls;
      }
    }
  }

  function render(s) {
    setText('site-name', (s.site.orgName || '') + ' ' + s.site.orgCode + ' · ' + s.site.termId);
    const overall = $('overall');
    overall.textContent = s.ok ? 'healthy' : 'attention';
    overall.className = 'badge ' + (s.ok ? 'ok' : 'bad');
    setText('version', s.version);
    setText('uptime', fmtAge(s.uptimeSeconds));

    setText('card-state', s.card.ok ? 'ready' : 'failed');
    setText('card-detail', s.card.driver + ': ' + s.card.detail);
    tile('tile-card', s.card.ok ? 'ok' : 'bad');

    const u = s.upstream;
    setText('upstream-state', u.reachable ? 'reachable' : 'unreachable');
    setText('upstream-latency', u.latencyMs === undefined || u.latencyMs === null ? '–' : Math.round(u.latencyMs) + ' ms');
    setText('upstream-detail', (u.url || '') + (u.lastError ? ' — ' + u.lastError : '') + (u.checkedAt ? ' (checked ' + ago(u.checkedAt, s.now) + ')' : ''));
    tile('tile-upstream', u.reachable ? 'ok' : 'bad');

    const o = s.outbox;
    setText('outbox-depth', String(o.depth));
    setText('outbox-age', o.oldestAgeSeconds === null ? '–' : fmtAge(o.oldestAgeSeconds));
    setText('outbox-detail', (o.full ? 'FULL — new records refused. ' : '') + o.dead + ' dead · ' + Math.round(o.bytes / 1024) + ' KiB');
    tile('tile-outbox', o.full ? 'bad' : o.depth > 0 ? 'warn' : 'ok');

    if (s.audit) {
      setText('audit-state', s.audit.failures === 0 ? 'writing' : s.audit.failures + ' failed appends');
      setText('audit-detail', 'last seq ' + s.audit.lastSeq + ' · ' + s.audit.files + ' day files · ' + Math.round(s.audit.bytes / 1024) + ' KiB' + (s.audit.lastError ? ' — ' + s.audit.lastError : ''));
      tile('tile-audit', s.audit.failures === 0 ? 'ok' : 'bad');
    }

    fillTable('scanners', s.scanners.map((x) => [x.name || x.id, x.station || '', x.driver || '', [x.state, x.state], ago(x.lastScanAt, s.now)]), 'no scanners');
    setText('errors-window', '(last ' + fmtAge(s.errors.windowSeconds) + ')');
    fillTable('errors', s.errors.byCode.map((e) => [e.ret_code, e.ret_msg, e.count, ago(e.last_at, s.now)]), 'no errors');
    fillTable('recent', s.recent.map((r) => [fmtTime(r.time), r.scanner || r.terminal || '', r.route || (r.action === 'verify.rejected' ? 'rejected' : ''), [r.ret_code || '', r.ret_code === '0000' ? 'ok' : 'error'], r.subject && r.subject.name, r.subject && r.subject.id_no]), 'none yet');
    setText('problems', s.problems.length ? 'Not answering: ' + s.problems.join('; ') : '');
  }

  function showLogin(message) {
    clearTimeout(timer);
    $('dashboard').hidden = true;
    $('forget').hidden = true;
    $('login').hidden = false;
    setText('login-error', message || '');
    setText('live', 'not connected');
    $('key').focus();
  }

  async function poll() {
    const key = sessionStorage.getItem(KEY);
    if (!key) return showLogin('');
    try {
      const res = await fetch(API, { headers: { Authorization: 'Bearer ' + key, Accept: 'application/json' }, cache: 'no-store' });
      if (res.status === 401 || res.status === 400) {
        sessionStorage.removeItem(KEY);
        return showLogin('The appliance refused this key.');
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      render(await res.json());
      lastOk = Date.now();
      $('login').hidden = true;
      $('dashboard').hidden = false;
      $('forget').hidden = false;
      const live = $('live');
      live.textContent = 'live · updated ' + new Date(lastOk).toLocaleTimeString();
      live.className = 'live';
    } catch (err) {
      const live = $('live');
      live.textContent = 'appliance not answering (' + err.message + ')' + (lastOk ? ' · last update ' + new Date(lastOk).toLocaleTimeString() : '');
      live.className = 'live stale';
    }
    timer = setTimeout(poll, interval);
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $('key').value.trim());
    $('key').value = '';
    setText('login-error', '');
    poll();
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    showLogin('');
  });
  poll();
})();
