// ehc-edge status page: polls the authenticated /v1/status (and /v1/history for the charts) and renders
// them. No framework; text only (textContent, never innerHTML), so nothing in the data can become
// markup. Chinese first (?lang=en or the button for English); every time shown is China Standard Time.
'use strict';
(function () {
  const API = document.querySelector('meta[name="ehc-status-api"]').content;
  const HISTORY = document.querySelector('meta[name="ehc-history-api"]').content;
  const KEY = 'ehc-edge.status.key';
  const LANG = 'ehc-edge.status.lang';
  const params = new URLSearchParams(location.search);
  const interval = Math.max(500, Number(params.get('interval')) || 2000);
  const historyHours = Math.min(24 * 7, Math.max(1, Number(params.get('hours')) || 6));
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let lastOk = 0;
  let lastHistory = 0;
  let lastStatus = null;
  let lastHistoryDoc = null;
  const charts = {};

  const TEXT = {
    zh: {
      title: 'ehc-edge 状态', version: '版本', uptime: '运行', notConnected: '未连接', forget: '清除密钥',
      loginText: '本页显示设备状态（/v1/status）。请输入查看密钥（viewer）或 HIS 密钥；密钥只保存在本浏览器标签页（sessionStorage），以 Authorization: Bearer 发送。',
      keyLabel: '密钥', connect: '连接', problems: '问题', card: '密码卡', upstream: '发卡方系统 / VPN', latency: '延迟',
      outbox: '待上传队列', queued: '条', oldest: '最早', audit: '审计日志', scanners: '扫码器', history: '历史', events: '事件',
      chartVerify: '每分钟核验（成功 / 拒绝）', chartLatency: '核验延迟 p50 / p99（毫秒）', chartOutbox: '待上传队列深度 / 每分钟上传', chartUpstream: '发卡方延迟（毫秒，不可达为空）',
      errors: '按返回码统计的错误', recent: '最近核验', masked: '（已脱敏）', cstNote: '所有时间为北京时间（CST，UTC+8）。',
      colScanner: '扫码器', colStation: '工位', colDriver: '驱动', colState: '状态', colLastScan: '最后扫码', colTime: '时间 (CST)', colEvent: '事件',
      colCode: '返回码', colMeaning: '含义', colCount: '次数', colLast: '最近', colRoute: '路径', colName: '姓名', colId: '证件号',
      ok: '正常', degraded: '降级', down: '故障', ready: '就绪', failed: '不可用', reachable: '可达', unreachable: '不可达',
      writing: '写入正常', failedAppends: '次写入失败', dead: '失败', full: '已满——新记录被拒绝。', dayFiles: '个日文件', lastSeq: '最后序号',
      since: '自', ago: '前', never: '从未', noScanners: '无扫码器', noErrors: '无错误', noneYet: '暂无', noEvents: '无事件',
      last: '最近', checked: '检查于', refusedKey: '设备拒绝了此密钥。', liveUpdated: '实时 · 更新于', notAnswering: '设备无应答', lastUpdate: '上次更新',
      rejected: '拒绝', verified: '成功', drained: '上传', depth: '深度',
      state: { ready: '就绪', disconnected: '已断开', error: '故障', opening: '打开中', unplugged: '已拔出', refused: '已拒绝' },
      units: [' 秒', ' 分', ' 小时', ' 天'], langButton: 'English',
    },
    en: {
      title: 'ehc-edge status', version: 'version', uptime: 'uptime', notConnected: 'not connected', forget: 'Forget key',
      loginText: "This page shows the appliance's state from /v1/status. Enter a viewer or HIS API key; it is kept only in this browser tab (sessionStorage) and sent as Authorization: Bearer.",
      keyLabel: 'API key', connect: 'Connect', problems: 'Problems', card: 'Crypto card', upstream: 'Upstream / VPN', latency: 'latency',
      outbox: 'Outbox', queued: 'queued', oldest: 'oldest', audit: 'Audit trail', scanners: 'Scanners', history: 'History', events: 'Events',
      chartVerify: 'Verifications per minute (ok / rejected)', chartLatency: 'Verify latency p50 / p99 (ms)', chartOutbox: 'Outbox depth / drained per minute', chartUpstream: 'Home system latency (ms; gap = unreachable)',
      errors: 'Errors by return code', recent: 'Recent verifications', masked: '(masked)', cstNote: 'All times are China Standard Time (CST, UTC+8).',
      colScanner: 'Scanner', colStation: 'Station', colDriver: 'Driver', colState: 'State', colLastScan: 'Last scan', colTime: 'Time (CST)', colEvent: 'Event',
      colCode: 'Code', colMeaning: 'Meaning', colCount: 'Count', colLast: 'Last', colRoute: 'Route', colName: 'Name', colId: 'ID',
      ok: 'healthy', degraded: 'degraded', down: 'down', ready: 'ready', failed: 'failed', reachable: 'reachable', unreachable: 'unreachable',
      writing: 'writing', failedAppends: 'failed appends', dead: 'dead', full: 'FULL — new records refused. ', dayFiles: 'day files', lastSeq: 'last seq',
      since: 'since', ago: 'ago', never: 'never', noScanners: 'no scanners', noErrors: 'no errors', noneYet: 'none yet', noEvents: 'no events',
      last: 'last', checked: 'checked', refusedKey: 'The appliance refused this key.', liveUpdated: 'live · updated', notAnswering: 'appliance not answering', lastUpdate: 'last update',
      rejected: 'rejected', verified: 'ok', drained: 'drained', depth: 'depth',
      state: { ready: 'ready', disconnected: 'disconnected', error: 'error', opening: 'opening', unplugged: 'unplugged', refused: 'refused' },
      units: [' s', ' min', ' h', ' d'], langButton: '中文',
    },
  };
  let lang = /^en/i.test(params.get('lang') || '') ? 'en' : /^zh/i.test(params.get('lang') || '') ? 'zh' : localStorage.getItem(LANG) === 'en' ? 'en' : 'zh';
  const t = (k) => TEXT[lang][k];

  function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('title');
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
    $('lang').textContent = t('langButton');
    if (lastStatus) render(lastStatus);
    if (lastHistoryDoc) renderHistory(lastHistoryDoc, true);
  }

  // China Standard Time without relying on the browser's zone: UTC+8, no daylight saving
  const CST = 8 * 3600 * 1000;
  const pad = (n) => String(n).padStart(2, '0');
  const cst = (ms) => new Date(ms + CST);
  const fmtCst = (iso, withDate) => {
    if (!iso) return '–';
    const d = cst(Date.parse(iso));
    const time = pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds());
    return withDate ? d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' + time : time;
  };
  const sameCstDay = (a, b) => Math.floor((a + CST) / 86400000) === Math.floor((b + CST) / 86400000);
  const fmtWhen = (iso, nowIso) => (iso ? fmtCst(iso, !sameCstDay(Date.parse(iso), Date.parse(nowIso))) : '–');

  const fmtAge = (seconds) => {
    if (seconds === null || seconds === undefined) return '–';
    const s = Math.round(seconds);
    const [sec, min, h, d] = t('units');
    if (s < 60) return s + sec;
    if (s < 3600) return Math.floor(s / 60) + min + ' ' + (s % 60) + sec;
    if (s < 86400) return Math.floor(s / 3600) + h + ' ' + Math.floor((s % 3600) / 60) + min;
    return Math.floor(s / 86400) + d + ' ' + Math.floor((s % 86400) / 3600) + h;
  };
  const ago = (iso, now) => {
    if (!iso) return t('never');
    const a = fmtAge((Date.parse(now) - Date.parse(iso)) / 1000);
    return lang === 'zh' ? a + t('ago') : a + ' ' + t('ago');
  };
  const sinceText = (iso, now) => t('since') + ' ' + fmtWhen(iso, now) + ' CST';

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

  function scannerState(x, now) {
    const word = t('state')[x.state] || x.state;
    if (x.state === 'unplugged' && x.since) return word + ' ' + sinceText(x.since, now);
    if (x.detail && x.state !== 'ready') return word + ': ' + x.detail;
    return word;
  }

  function render(s) {
    lastStatus = s;
    setText('site-name', (s.site.orgName || '') + ' ' + s.site.orgCode + ' · ' + s.site.termId);
    const health = s.health || (s.ok ? 'ok' : 'degraded');
    const overall = $('overall');
    overall.textContent = t(health);
    overall.className = 'badge ' + health;
    overall.dataset.health = health;
    setText('version', s.version);
    setText('uptime', fmtAge(s.uptimeSeconds));

    const problems = $('problems');
    problems.replaceChildren();
    for (const p of s.problems || []) {
      const li = document.createElement('li');
      li.className = p.severity;
      li.dataset.component = p.component;
      li.textContent = (lang === 'zh' ? p.reason_zh : p.reason) + (p.since ? '（' + sinceText(p.since, s.now) + '）' : '');
      problems.appendChild(li);
    }
    $('problems-box').hidden = !(s.problems && s.problems.length);

    setText('card-state', s.card.ok ? t('ready') : t('failed'));
    setText('card-detail', s.card.driver + ': ' + s.card.detail);
    tile('tile-card', s.card.ok ? 'ok' : 'bad');

    const u = s.upstream;
    setText('upstream-state', u.reachable ? t('reachable') : t('unreachable'));
    setText('upstream-latency', u.latencyMs === undefined || u.latencyMs === null ? '–' : Math.round(u.latencyMs) + ' ms');
    setText('upstream-detail', (u.url || '') + (u.lastError ? ' — ' + u.lastError : '') + (u.checkedAt ? ' (' + t('checked') + ' ' + ago(u.checkedAt, s.now) + ')' : ''));
    tile('tile-upstream', u.reachable ? 'ok' : 'bad');

    const o = s.outbox;
    setText('outbox-depth', String(o.depth));
    setText('outbox-age', o.oldestAgeSeconds === null || o.oldestAgeSeconds === undefined ? '–' : fmtAge(o.oldestAgeSeconds));
    setText('outbox-detail', (o.full ? t('full') : '') + o.dead + ' ' + t('dead') + ' · ' + Math.round(o.bytes / 1024) + ' KiB');
    tile('tile-outbox', o.full ? 'bad' : o.depth > 0 ? 'warn' : 'ok');

    if (s.audit) {
      setText('audit-state', s.audit.failures === 0 ? t('writing') : s.audit.failures + ' ' + t('failedAppends'));
      setText('audit-detail', t('lastSeq') + ' ' + s.audit.lastSeq + ' · ' + s.audit.files + ' ' + t('dayFiles') + ' · ' + Math.round(s.audit.bytes / 1024) + ' KiB' + (s.audit.lastError ? ' — ' + s.audit.lastError : ''));
      tile('tile-audit', s.audit.failures === 0 ? 'ok' : 'bad');
    }

    fillTable('scanners', s.scanners.map((x) => [x.name || x.id, x.station || '', x.driver || '', [scannerState(x, s.now), x.state], ago(x.lastScanAt, s.now)]), t('noScanners'));
    setText('errors-window', '(' + t('last') + ' ' + fmtAge(s.errors.windowSeconds) + ')');
    fillTable('errors', s.errors.byCode.map((e) => [e.ret_code, e.ret_msg, e.count, ago(e.last_at, s.now)]), t('noErrors'));
    fillTable('recent', s.recent.map((r) => [fmtWhen(r.time, s.now), r.scanner || r.terminal || '', r.route || (r.action === 'verify.rejected' ? t('rejected') : ''), [r.ret_code || '', r.ret_code === '0000' ? 'ok' : 'error'], r.subject && r.subject.name, r.subject && r.subject.id_no]), t('noneYet'));
  }

  // --- history charts (uPlot, served locally) ---
  function chart(id, doc, series, opts) {
    const el = $(id);
    const width = Math.max(240, el.clientWidth || 300);
    const axes = [
      { values: (u, ticks) => ticks.map((v) => { const d = cst(v * 1000); return pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()); }) },
      {},
    ];
    const data = [doc.t, ...series.map((s) => s.data)];
    const config = {
      width,
      height: 180,
      scales: { x: { time: false } },
      axes,
      legend: { show: true },
      series: [{ label: 'CST', value: (u, v) => (v === null || v === undefined ? '–' : fmtCst(new Date(v * 1000).toISOString(), true)) }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: false, ...(s.fill ? { fill: s.fill } : {}) }))],
      ...(opts || {}),
    };
    if (charts[id]) charts[id].destroy();
    el.replaceChildren();
    charts[id] = new window.uPlot(config, data, el);
  }

  function renderHistory(doc, force) {
    lastHistoryDoc = doc;
    $('history').hidden = false;
    setText('history-range', doc.t.length ? '(' + fmtCst(new Date(doc.t[0] * 1000).toISOString(), true) + ' – ' + fmtCst(new Date(doc.t[doc.t.length - 1] * 1000).toISOString(), true) + ' CST)' : '');
    if (typeof window.uPlot === 'function' && (force || true)) {
      chart('chart-verify', doc, [
        { label: t('verified'), data: doc.verified, color: '#1b7f3b' },
        { label: t('rejected'), data: doc.rejected, color: '#b3261e' },
      ]);
      chart('chart-latency', doc, [
        { label: 'p50', data: doc.p50, color: '#3566c5' },
        { label: 'p99', data: doc.p99, color: '#a15c00' },
      ]);
      chart('chart-outbox', doc, [
        { label: t('depth'), data: doc.outboxDepth, color: '#6b3fa0' },
        { label: t('drained'), data: doc.drained, color: '#1b7f3b' },
      ]);
      chart('chart-upstream', doc, [{ label: 'ms', data: doc.upstreamMs, color: '#3566c5' }]);
    }
    const now = new Date().toISOString();
    fillTable('events', (doc.events || []).slice().reverse().map((e) => [fmtWhen(e.at, now), [lang === 'zh' ? e.text_zh : e.text, e.kind.replace(/\./g, '-')]]), t('noEvents'));
  }

  async function pollHistory(key) {
    if (Date.now() - lastHistory < 30000) return;
    lastHistory = Date.now();
    try {
      const res = await fetch(HISTORY + '?hours=' + historyHours, { headers: { Authorization: 'Bearer ' + key, Accept: 'application/json' }, cache: 'no-store' });
      if (!res.ok) return;
      renderHistory(await res.json(), false);
    } catch (err) {
      // history is optional: the live tiles still show
    }
  }

  function showLogin(message) {
    clearTimeout(timer);
    $('dashboard').hidden = true;
    $('forget').hidden = true;
    $('login').hidden = false;
    setText('login-error', message || '');
    setText('live', t('notConnected'));
    $('key').focus();
  }

  async function poll() {
    const key = sessionStorage.getItem(KEY);
    if (!key) return showLogin('');
    try {
      const res = await fetch(API, { headers: { Authorization: 'Bearer ' + key, Accept: 'application/json' }, cache: 'no-store' });
      if (res.status === 401 || res.status === 400 || res.status === 403) {
        sessionStorage.removeItem(KEY);
        return showLogin(t('refusedKey'));
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      $('login').hidden = true;
      $('dashboard').hidden = false;
      $('forget').hidden = false;
      render(await res.json());
      lastOk = Date.now();
      const live = $('live');
      live.textContent = t('liveUpdated') + ' ' + fmtCst(new Date(lastOk).toISOString(), false) + ' CST';
      live.className = 'live';
      pollHistory(key);
    } catch (err) {
      const live = $('live');
      live.textContent = t('notAnswering') + ' (' + err.message + ')' + (lastOk ? ' · ' + t('lastUpdate') + ' ' + fmtCst(new Date(lastOk).toISOString(), false) + ' CST' : '');
      live.className = 'live stale';
    }
    timer = setTimeout(poll, interval);
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $('key').value.trim());
    $('key').value = '';
    setText('login-error', '');
    lastHistory = 0;
    poll();
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    showLogin('');
  });
  $('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem(LANG, lang);
    applyLang();
  });
  applyLang();
  poll();
})();
