// ehc-edge desk page: the latest verified patient of one station, from the live scan stream.
// Reference for integrators: key → POST /v1/stream-tickets → EventSource(stream_url); a new ticket on
// every reconnect (tickets are single-use), resuming with lastEventId (the last event's id, or the
// `ready` event's before any other). Text only (textContent).
'use strict';
(function () {
  const KEY = 'ehc-edge.desk.key';
  const params = new URLSearchParams(location.search);
  const station = params.get('station') || '';
  const $ = (id) => document.getElementById(id);
  let source = null;
  let lastEventId = null;
  let retry = null;

  // 附录B display masking: name with its 2nd character as *, ID number first 4 + last 4.
  const maskName = (n) => { const c = Array.from(n || ''); if (c.length === 0) return ''; if (c.length === 1) return '*'; c[1] = '*'; return c.join(''); };
  const maskId = (v) => { const c = Array.from(v || ''); if (c.length <= 8) return '*'.repeat(c.length); return c.slice(0, 4).join('') + '*'.repeat(c.length - 8) + c.slice(-4).join(''); };
  const cst = (t) => new Date(t || Date.now()).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false });
  const ROUTE = { local: '本地核验 local', 'offline-local': '离线本地 offline', upstream: '主索引 upstream', 'cross-domain': '跨域 cross-domain', deferred: '延后 deferred' };
  const ID_TYPE = { '01': '居民身份证', '02': '军官证', '03': '护照', '04': '港澳通行证', '05': '台胞证', '06': '外国人永久居留证' };
  const MESSAGES = {
    '1010': '无权限', '2001': '二维码已过期，请刷新', '2002': '二维码无效', '2003': '二维码已被使用', '2004': '卡状态异常',
    '2005': '解密失败', '3001': '查无此卡', '8004': '主索引不可达', '8007': '存储失败', '8008': '密码卡不可用', '9001': '参数错误',
  };

  function key() { return sessionStorage.getItem(KEY); }
  function showLogin(message) {
    if (source) source.close();
    source = null;
    $('desk').hidden = true;
    $('forget').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
  }
  function live(ok, text) { const b = $('live'); b.className = 'badge ' + (ok ? 'ok' : 'bad'); b.textContent = text; }

  function showResult(r) {
    $('refused').hidden = true;
    $('patient').className = 'card';
    $('hint').hidden = true;
    $('who').hidden = false;
    $('name').textContent = maskName(r.user_name || '') || '（无姓名）';
    $('id-type').textContent = ID_TYPE[r.id_type] || '证件';
    $('id-no').textContent = maskId(r.id_no || '');
    $('decided').textContent = ROUTE[r.decided_by] || r.decided_by || '';
    $('time').textContent = cst();
    $('check').hidden = !r.identity_check_required;
  }
  function showError(e) {
    // the refused code is the current one: the previous patient is no longer shown
    $('who').hidden = true;
    $('hint').hidden = false;
    $('patient').className = 'card waiting';
    $('refused').hidden = false;
    $('err-code').textContent = '拒绝 ' + (e.ret_code || '');
    $('err-msg').textContent = (MESSAGES[e.ret_code] || '') + (e.ret_msg ? ' — ' + e.ret_msg : '');
    $('err-time').textContent = cst() + ' (北京时间 CST)';
  }
  function showScanner(s) {
    const b = $('scanner');
    const ok = s.state === 'open' || s.state === 'ready';
    b.className = 'badge ' + (ok ? 'ok' : 'bad');
    b.textContent = '扫码器 ' + (s.name || s.scannerId || '') + ' ' + (ok ? '就绪 ready' : '未连接 ' + (s.state || ''));
  }

  async function api(path, init) {
    const res = await fetch(path, { ...init, headers: { authorization: 'Bearer ' + key(), 'content-type': 'application/json', ...((init && init.headers) || {}) } });
    if (res.status === 401) { sessionStorage.removeItem(KEY); showLogin('密钥无效 key refused'); throw new Error('401'); }
    return res;
  }

  async function connect() {
    clearTimeout(retry);
    try {
      const scanners = await (await api('/v1/scanners')).json();
      for (const s of scanners.scanners || []) if (!station || s.station === station) showScanner(s);
      const t = await (await api('/v1/stream-tickets', { method: 'POST', body: JSON.stringify(station ? { station } : {}) })).json();
      const url = t.stream_url + (lastEventId ? '&lastEventId=' + encodeURIComponent(lastEventId) : '');
      source = new EventSource(url);
      source.onopen = () => live(true, '已连接 live');
      // a refused scan arrives as an SSE event named "error" too (a MessageEvent with data): only a
      // plain Event is the connection failing
      source.onerror = (ev) => {
        if (ev instanceof MessageEvent) return;
        source.close();
        live(false, '重连中 reconnecting');
        retry = setTimeout(connect, 2000);
      };
      const take = (fn) => (ev) => { lastEventId = ev.lastEventId || lastEventId; try { fn(JSON.parse(ev.data)); } catch (_) { /* ignore */ } };
      // a stream opened without lastEventId begins with `ready`, its position: a reconnect before any
      // result resumes from there (else it would start at "now" and lose what came in between)
      source.addEventListener('ready', (ev) => { lastEventId = ev.lastEventId || lastEventId; });
      source.addEventListener('result', take((r) => (r.ret_code && r.ret_code !== '0000' ? showError(r) : showResult(r))));
      source.addEventListener('error', take(showError));
      source.addEventListener('scanner', take(showScanner));
    } catch (err) {
      if (String(err && err.message) !== '401') { live(false, '重连中 reconnecting'); retry = setTimeout(connect, 3000); }
    }
  }

  $('station').textContent = station || '全部窗口 all stations';
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $('key').value);
    $('login').hidden = true;
    $('desk').hidden = false;
    $('forget').hidden = false;
    connect();
  });
  $('forget').addEventListener('click', () => { sessionStorage.removeItem(KEY); showLogin(''); });
  if (key()) { $('login').hidden = true; $('desk').hidden = false; $('forget').hidden = false; connect(); } else showLogin('');
})();
