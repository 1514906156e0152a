/*
 * ordo dashboard — plain ES2020, no framework, no build step. Served by
 * `ordo serve` at /ui under a strict CSP: nothing inline, no eval, and no
 * server data ever goes through innerHTML (service names and batch ids are
 * untrusted: they are set with textContent / attributes only).
 *
 * Polls GET /v1/dashboard?since=T and the current GET /v1/services page
 * every 2 s (one of each in flight at most), pauses while the tab is
 * hidden. Every call carries `Authorization: Bearer <token>`; the token
 * comes from `#token=…` (then dropped from the URL) or the token form and
 * is kept in sessionStorage 'ordo.token' (this tab only).
 */
'use strict';
(() => {
  const POLL_MS = 2000;
  const WINDOW_MS = 10 * 60 * 1000;
  const MAX_SAMPLES = 600;
  const GAP_MS = 5000;          // a longer hole between samples breaks the lines
  const PAGE = 50;
  const TOKEN_KEY = 'ordo.token';
  const SVGNS = 'http://www.w3.org/2000/svg';
  const GRAPH_MAX = 20;         // nodes per graph column before "+N more"
  const SORTS = ['name', 'depth', 'queued', 'waiting', 'in_flight', 'committed', 'invalid', 'halted'];
  const FILTERS = ['all', 'halted', 'waiting', 'in_flight', 'idle'];
  const STATES = ['QUEUED', 'WAITING', 'SUBMITTED', 'UNKNOWN', 'COMMITTED', 'INVALID'];
  const TOTALS = ['enqueued', 'queued', 'waiting', 'in_flight', 'committed', 'invalid', 'services'];

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  const stats = {
    refreshes: 0, lastRefreshMs: 0, maxRefreshMs: 0,
    lastRenderMs: 0, maxRenderMs: 0, lastServerMs: 0,
  };
  window.ordoStats = stats;

  const S = {
    token: null,
    gen: 0,                 // bumped whenever the token changes: late answers are dropped
    authFailed: false,
    samples: [],            // the series, oldest first, at most MAX_SAMPLES
    lastT: null,
    dash: null,
    svc: { offset: 0, sort: 'depth', order: 'desc', q: '', filter: 'all', data: null },
    inflight: { dash: false, svc: false },
    svcDirty: false,
    errors: new Map(),      // source -> message
    lastOk: null,           // Date of the last good dashboard answer
    batchId: null,
    batchStack: [],
    batchSeq: 0,
    batchData: null,
  };

  /* ---------------------------------------------------------------- utils */

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function isNum(v) { return typeof v === 'number' && Number.isFinite(v); }
  function intText(v) { return isNum(v) ? String(Math.round(v)) : '—'; }
  const groupFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  function fmtInt(v) { return isNum(v) ? groupFmt.format(v) : '—'; }
  function trimZero(s) { return s.replace(/\.0$/, ''); }
  function fmtRate(v) {
    if (!isNum(v)) return '—';
    if (v >= 100) return groupFmt.format(Math.round(v));
    return trimZero(v.toFixed(1));
  }
  function fmtMs(v) {
    if (!isNum(v)) return '—';
    if (v < 10) return trimZero(v.toFixed(1)) + ' ms';
    return groupFmt.format(Math.round(v)) + ' ms';
  }
  function fmtCompact(v) {
    const a = Math.abs(v);
    const f = (x, s) => trimZero(x.toFixed(x < 10 ? 1 : 0)) + s;
    if (a >= 1e9) return f(v / 1e9, 'G');
    if (a >= 1e6) return f(v / 1e6, 'M');
    if (a >= 1e3) return f(v / 1e3, 'k');
    if (a > 0 && a < 10) return trimZero(v.toFixed(a < 1 ? 2 : 1));
    return String(Math.round(v));
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  function fmtClock(ms) {
    const d = new Date(ms);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }
  function fmtDateTime(ms) {
    const d = new Date(ms);
    if (Number.isNaN(d.getTime())) return '?';
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
      `${fmtClock(ms)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  }
  function fmtDuration(ms) {
    if (!isNum(ms) || ms < 0) return '';
    if (ms < 1000) return Math.round(ms) + ' ms';
    const s = ms / 1000;
    if (s < 60) return trimZero(s.toFixed(1)) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${m % 60}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }
  function parseTime(s) {
    if (isNum(s)) return s;
    if (typeof s !== 'string') return NaN;
    return Date.parse(s);
  }
  function abbrev(s, n) {
    s = String(s);
    if (s.length <= n) return s;
    const tail = Math.min(6, Math.floor((n - 1) / 3));
    return s.slice(0, n - 1 - tail) + '…' + s.slice(s.length - tail);
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    if (attrs) for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    return e;
  }

  /* ------------------------------------------------------------------ api */

  class ApiError extends Error {
    constructor(status, name, message) {
      super(message);
      this.status = status;
      this.errName = name;
    }
    text() {
      if (this.status === 0) return 'cannot reach the server';
      return `${this.status} ${this.errName}: ${this.message}`.trim();
    }
  }

  async function api(method, path, body) {
    if (!S.token) throw new ApiError(401, 'ORDO_E_AUTH', 'no token');
    const headers = { Authorization: 'Bearer ' + S.token, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    let text = '';
    try {
      resp = await fetch(path, init);
      text = await resp.text();
    } catch (e) {
      throw new ApiError(0, 'network', 'cannot reach the server');
    }
    let json = null;
    if (text) {
      try { json = JSON.parse(text); } catch (e) { json = null; }
    }
    if (!resp.ok) {
      const er = json && typeof json === 'object' && json.error && typeof json.error === 'object' ? json.error : {};
      const name = typeof er.name === 'string' ? er.name : (resp.statusText || 'HTTP error');
      const msg = typeof er.message === 'string' ? er.message
        : (json ? '' : text.slice(0, 200));
      throw new ApiError(resp.status, name, msg);
    }
    if (json === null && text) throw new ApiError(resp.status, 'bad answer', 'the server answered something that is not JSON');
    return json;
  }

  /* --------------------------------------------------------------- errors */

  function renderErrors() {
    const box = $('error');
    const texts = [...new Set(S.errors.values())];
    setText(box, texts.join('\n'));
    box.hidden = texts.length === 0;
    updateStatus();
  }
  function setError(src, text) { S.errors.set(src, text); renderErrors(); }
  function clearError(src) {
    if (S.errors.delete(src)) renderErrors();
  }
  function handleErr(src, e) {
    if (!(e instanceof ApiError)) {
      setError(src, String(e && e.message ? e.message : e));
      return;
    }
    if (e.status === 401) { unauthorized(e); return; }
    setError(src, e.text());
  }

  let toastTimer = 0;
  function toast(text, bad) {
    const t = $('toast');
    t.textContent = text;
    t.classList.toggle('bad', !!bad);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  function updateStatus() {
    const st = $('status');
    let text;
    let cls;
    const pollErr = S.errors.has('dash') || S.errors.has('svc');
    if (!S.token) {
      text = S.authFailed ? 'error' : 'paused';
      cls = S.authFailed ? 'error' : 'paused';
    } else if (document.hidden) {
      text = 'paused'; cls = 'paused';
    } else if (pollErr) {
      text = 'error'; cls = 'error';
    } else if (S.lastOk) {
      text = 'live · refreshed ' + fmtClock(S.lastOk); cls = 'live';
    } else {
      text = 'connecting…'; cls = 'paused';
    }
    setText(st, text);
    st.className = 'status st-' + cls;
  }

  /* ---------------------------------------------------------------- token */

  function storeToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: keep it in memory only */ }
  }
  function loadToken() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function readHash() {
    const h = location.hash;
    if (!h || h.length < 2) return;
    let token = null;
    let batch = null;
    for (const part of h.slice(1).split('&')) {
      const i = part.indexOf('=');
      if (i < 0) continue;
      const k = part.slice(0, i);
      let v = part.slice(i + 1);
      try { v = decodeURIComponent(v); } catch (e) { /* keep it raw */ }
      if (k === 'token') token = v;
      else if (k === 'batch') batch = v;
    }
    if (token !== null) {
      history.replaceState(null, '', location.pathname + location.search);
      if (token) setToken(token);
    }
    if (batch) openBatch(batch, false);
  }

  function validToken(t) { return /^[\x21-\x7e]+$/.test(t); }

  function setToken(t) {
    t = String(t).trim();
    if (!validToken(t)) {
      setError('auth', 'the token holds characters an HTTP header cannot carry');
      showTokenForm();
      return;
    }
    S.token = t;
    S.authFailed = false;
    S.gen++;
    storeToken(t);
    S.errors.clear();
    resetData();
    $('token-form').hidden = true;
    $('token-input').value = '';
    $('token-change').hidden = false;
    renderErrors();
    tick();
    if (S.batchId) openBatch(S.batchId, false);
  }

  function showTokenForm() {
    $('token-form').hidden = false;
    $('token-change').hidden = true;
    $('token-input').focus();
  }

  function unauthorized(e) {
    S.token = null;
    S.gen++;
    S.authFailed = true;
    storeToken(null);
    resetData();
    S.errors.clear();
    S.errors.set('auth', e.text());
    showTokenForm();
    renderErrors();
  }

  /* ---------------------------------------------------------- reset data */

  function resetData() {
    S.samples = [];
    S.lastT = null;
    S.dash = null;
    S.svc.data = null;
    S.lastOk = null;
    S.svcDirty = false;
    for (const k of TOTALS) setText($('total-' + k), '—');
    for (const id of ['lat-p50', 'lat-p99']) setText($(id), '—');
    for (const id of ['rate-enqueued', 'rate-committed', 'rate-invalid', 'lat-count']) setText($(id), '');
    setText($('instance'), '—');
    setText($('version'), '');
    setText($('refresh-cost'), '');
    setText($('ledger-state'), '—');
    $('ledger-state').className = '';
    setText($('ledger-error'), '');
    setText($('ledger-rps'), '—');
    setText($('ledger-eps'), '—');
    setText($('ledger-calls'), '—');
    rowPool.length = 0;
    $('svc-body').replaceChildren();
    setText($('svc-page'), '—');
    setText($('svc-total'), '');
    $('svc-prev').disabled = true;
    $('svc-next').disabled = true;
    $('batch-view').hidden = true;
    S.batchData = null;
    $('batch-graph').replaceChildren();
    $('batch-blockers').replaceChildren();
    for (const c of charts) c.clear();
    updateStatus();
  }

  /* --------------------------------------------------------------- charts */

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    const f = v / e;
    const n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return n * e;
  }

  class Chart {
    constructor(canvasId, legendId, lines, fmtVal, fmtAxis) {
      this.canvas = $(canvasId);
      this.lines = lines;             // [{label, color}]
      this.fmtVal = fmtVal;
      this.fmtAxis = fmtAxis;
      this.data = null;               // {times, tEnd, vals: [[...], ...]}
      this.hoverX = null;
      this.legendVals = [];
      const lg = $(legendId);
      for (const l of lines) {
        const it = el('span', 'item');
        const sw = el('span', 'sw');
        sw.style.background = l.color;   // CSSOM: allowed by the CSP
        const v = el('span', 'val', '—');
        it.append(sw, el('span', 'lbl', l.label), v);
        lg.appendChild(it);
        this.legendVals.push(v);
      }
      this.canvas.addEventListener('mousemove', (e) => { this.hoverX = e.offsetX; this.draw(); });
      this.canvas.addEventListener('mouseleave', () => { this.hoverX = null; this.draw(); });
    }
    set(data, current) {
      this.data = data;
      for (let i = 0; i < this.lines.length; i++) {
        setText(this.legendVals[i], current ? this.fmtVal(current[i]) : '—');
      }
      this.draw();
    }
    clear() { this.set(null, null); }
    draw() {
      const cv = this.canvas;
      const w = cv.clientWidth;
      const h = cv.clientHeight;
      if (!w || !h) return;
      const dpr = window.devicePixelRatio || 1;
      const W = Math.round(w * dpr);
      const H = Math.round(h * dpr);
      if (cv.width !== W || cv.height !== H) { cv.width = W; cv.height = H; }
      const ctx = cv.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      const padL = 42, padR = 6, padT = 6, padB = 16;
      const pw = Math.max(10, w - padL - padR);
      const ph = Math.max(10, h - padT - padB);
      const d = this.data;

      let max = 0;
      if (d) {
        const t0 = d.tEnd - WINDOW_MS;
        for (const vs of d.vals) {
          for (let i = 0; i < vs.length; i++) {
            const v = vs[i];
            if (v != null && v > max && d.times[i] >= t0) max = v;
          }
        }
      }
      const top = niceCeil(max);

      // grid and axes
      ctx.lineWidth = 1;
      ctx.strokeStyle = '#eceef2';
      ctx.beginPath();
      for (let k = 1; k <= 4; k++) {
        const y = Math.round(padT + ph - (ph * k) / 4) + 0.5;
        ctx.moveTo(padL, y); ctx.lineTo(padL + pw, y);
      }
      for (let k = 1; k < 10; k++) {
        const x = Math.round(padL + (pw * k) / 10) + 0.5;
        ctx.moveTo(x, padT); ctx.lineTo(x, padT + ph);
      }
      ctx.stroke();
      ctx.strokeStyle = '#b8bec9';
      ctx.beginPath();
      ctx.moveTo(padL + 0.5, padT); ctx.lineTo(padL + 0.5, padT + ph + 0.5);
      ctx.lineTo(padL + pw, padT + ph + 0.5);
      ctx.stroke();

      ctx.fillStyle = '#667085';
      ctx.font = '10px system-ui, -apple-system, "Segoe UI", sans-serif';
      ctx.textAlign = 'right';
      ctx.textBaseline = 'top';
      ctx.fillText(d ? this.fmtAxis(top) : '', padL - 4, padT);
      ctx.textBaseline = 'middle';
      if (d) ctx.fillText(this.fmtAxis(top / 2), padL - 4, padT + ph / 2);
      ctx.textBaseline = 'bottom';
      ctx.fillText('0', padL - 4, padT + ph + 1);
      ctx.textBaseline = 'top';
      ctx.textAlign = 'left';
      ctx.fillText('−10 min', padL + 2, padT + ph + 3);
      ctx.textAlign = 'center';
      ctx.fillText('−5 min', padL + pw / 2, padT + ph + 3);
      ctx.textAlign = 'right';
      ctx.fillText('now', padL + pw, padT + ph + 3);

      if (!d || d.times.length === 0) {
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillStyle = '#9aa3b2';
        ctx.font = '12px system-ui, -apple-system, "Segoe UI", sans-serif';
        ctx.fillText('no data', padL + pw / 2, padT + ph / 2);
        return;
      }

      const t0 = d.tEnd - WINDOW_MS;
      const X = (t) => padL + ((t - t0) / WINDOW_MS) * pw;
      const Y = (v) => padT + ph - (v / top) * ph;
      ctx.save();
      ctx.beginPath();
      ctx.rect(padL, padT - 1, pw + 1, ph + 2);
      ctx.clip();
      ctx.lineWidth = 1.5;
      ctx.lineJoin = 'round';
      for (let s = 0; s < d.vals.length; s++) {
        const vs = d.vals[s];
        ctx.strokeStyle = this.lines[s].color;
        ctx.beginPath();
        let pen = false;
        let single = -1;
        let count = 0;
        for (let i = 0; i < vs.length; i++) {
          const v = vs[i];
          const t = d.times[i];
          if (v == null || t < t0 - 2000) { pen = false; continue; }
          if (pen && t - d.times[i - 1] > GAP_MS) pen = false;
          if (!pen) { ctx.moveTo(X(t), Y(v)); pen = true; single = i; } else ctx.lineTo(X(t), Y(v));
          count++;
        }
        ctx.stroke();
        if (count === 1 && single >= 0) {
          ctx.fillStyle = this.lines[s].color;
          ctx.fillRect(X(d.times[single]) - 1.5, Y(vs[single]) - 1.5, 3, 3);
        }
      }
      ctx.restore();

      // hover readout
      if (this.hoverX != null && this.hoverX >= padL && this.hoverX <= padL + pw) {
        const t = t0 + ((this.hoverX - padL) / pw) * WINDOW_MS;
        const i = nearest(d.times, t);
        if (i >= 0 && Math.abs(d.times[i] - t) < GAP_MS) {
          const x = Math.round(X(d.times[i])) + 0.5;
          ctx.strokeStyle = 'rgba(29,36,48,.35)';
          ctx.lineWidth = 1;
          ctx.beginPath(); ctx.moveTo(x, padT); ctx.lineTo(x, padT + ph); ctx.stroke();
          const rows = [fmtClock(d.times[i])];
          for (let s = 0; s < d.vals.length; s++) {
            rows.push(`${this.lines[s].label} ${this.fmtVal(d.vals[s][i])}`);
            const v = d.vals[s][i];
            if (v != null) {
              ctx.fillStyle = this.lines[s].color;
              ctx.beginPath(); ctx.arc(x, Y(v), 2.5, 0, 2 * Math.PI); ctx.fill();
            }
          }
          ctx.font = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
          let bw = 0;
          for (const r of rows) bw = Math.max(bw, ctx.measureText(r).width);
          bw += 12;
          const bh = rows.length * 14 + 6;
          let bx = x + 8;
          if (bx + bw > padL + pw) bx = x - 8 - bw;
          const by = padT + 2;
          ctx.fillStyle = 'rgba(255,255,255,.94)';
          ctx.strokeStyle = '#c4c9d2';
          ctx.fillRect(bx, by, bw, bh);
          ctx.strokeRect(bx + 0.5, by + 0.5, bw - 1, bh - 1);
          ctx.textAlign = 'left';
          ctx.textBaseline = 'top';
          rows.forEach((r, k) => {
            ctx.fillStyle = k === 0 ? '#667085' : this.lines[k - 1].color;
            ctx.fillText(r, bx + 6, by + 4 + k * 14);
          });
        }
      }
    }
  }

  function nearest(times, t) {
    let lo = 0;
    let hi = times.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid] < t) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(times[lo - 1] - t) < Math.abs(times[lo] - t)) lo--;
    return lo;
  }

  const rateFmt = (v) => fmtRate(v) + '/s';
  const charts = [];
  let chRates, chDepth, chLat, chLedger;

  function initCharts() {
    chRates = new Chart('chart-rates', 'legend-rates', [
      { label: 'enqueued', color: '#2563eb' },
      { label: 'committed', color: '#16a34a' },
      { label: 'invalid', color: '#dc2626' },
    ], rateFmt, fmtCompact);
    chDepth = new Chart('chart-depth', 'legend-depth', [
      { label: 'queued', color: '#6366f1' },
      { label: 'waiting', color: '#d97706' },
      { label: 'in flight', color: '#0891b2' },
    ], fmtInt, fmtCompact);
    chLat = new Chart('chart-latency', 'legend-latency', [
      { label: 'p50', color: '#2563eb' },
      { label: 'p99', color: '#9333ea' },
    ], fmtMs, fmtCompact);
    chLedger = new Chart('chart-ledger', 'legend-ledger', [
      { label: 'requests', color: '#0891b2' },
      { label: 'errors', color: '#dc2626' },
    ], rateFmt, fmtCompact);
    charts.push(chRates, chDepth, chLat, chLedger);
  }

  let redrawQueued = false;
  function redrawAll() {
    if (redrawQueued) return;
    redrawQueued = true;
    requestAnimationFrame(() => {
      redrawQueued = false;
      for (const c of charts) c.draw();
    });
  }

  /* ------------------------------------------------------------ dashboard */

  function num(v) { return isNum(v) ? v : null; }

  // Per-second rates of a cumulative counter, sample by sample.
  function rates(samples, field) {
    const out = new Array(samples.length).fill(null);
    for (let i = 1; i < samples.length; i++) {
      const a = num(samples[i - 1][field]);
      const b = num(samples[i][field]);
      const dt = samples[i].t - samples[i - 1].t;
      out[i] = a == null || b == null || !(dt > 0) || dt > GAP_MS ? null : Math.max(0, b - a) / (dt / 1000);
    }
    return out;
  }
  // The rate over the last few seconds (smoother than one sample).
  function recentRate(samples, field, span) {
    const n = samples.length;
    if (n < 2) return null;
    const last = samples[n - 1];
    let k = n - 2;
    while (k > 0 && last.t - samples[k].t < span) k--;
    const a = num(samples[k][field]);
    const b = num(last[field]);
    const dt = last.t - samples[k].t;
    if (a == null || b == null || !(dt > 0)) return null;
    return Math.max(0, b - a) / (dt / 1000);
  }

  function mergeSeries(d) {
    const series = Array.isArray(d.series) ? d.series : [];
    if (isNum(d.time_ms) && S.lastT != null && d.time_ms < S.lastT - 60000) {
      // the server's clock went back (restart on another host?): start over
      S.samples = [];
      S.lastT = null;
    }
    for (const s of series) {
      if (!s || !isNum(s.t)) continue;
      if (S.lastT != null && s.t <= S.lastT) continue;
      S.samples.push(s);
      S.lastT = s.t;
    }
    const newest = S.lastT;
    let drop = Math.max(0, S.samples.length - MAX_SAMPLES);
    while (drop < S.samples.length && newest != null && S.samples[drop].t < newest - WINDOW_MS - 2000) drop++;
    if (drop) S.samples.splice(0, drop);
  }

  function renderDashboard(d) {
    const tot = d.totals || {};
    for (const k of TOTALS) setText($('total-' + k), intText(tot[k]));
    const lat = d.latency || {};
    const hasLat = isNum(lat.count) ? lat.count > 0 : isNum(lat.p50_ms);
    setText($('lat-p50'), hasLat ? fmtMs(lat.p50_ms) : '—');
    setText($('lat-p99'), hasLat ? fmtMs(lat.p99_ms) : '—');
    setText($('lat-count'), isNum(lat.count) ? 'over ' + fmtInt(lat.count) + ' verdicts' : '');
    setText($('instance'), d.instance == null ? 'standalone' : String(d.instance));
    setText($('version'), d.version ? 'v' + String(d.version) : '');

    const sm = S.samples;
    const times = sm.map((s) => s.t);
    const tEnd = isNum(d.time_ms) ? Math.max(d.time_ms, S.lastT || 0) : (S.lastT || Date.now());
    const rEnq = recentRate(sm, 'enqueued', 5000);
    const rCom = recentRate(sm, 'committed', 5000);
    const rInv = recentRate(sm, 'invalid', 5000);
    setText($('rate-enqueued'), rEnq == null ? '' : rateFmt(rEnq));
    setText($('rate-committed'), rCom == null ? '' : rateFmt(rCom));
    setText($('rate-invalid'), rInv == null ? '' : rateFmt(rInv));

    chRates.set({ times, tEnd, vals: [rates(sm, 'enqueued'), rates(sm, 'committed'), rates(sm, 'invalid')] },
      [rEnq, rCom, rInv]);
    const field = (f) => sm.map((s) => num(s[f]));
    const last = sm.length ? sm[sm.length - 1] : null;
    chDepth.set({ times, tEnd, vals: [field('queued'), field('waiting'), field('in_flight')] },
      [num(tot.queued), num(tot.waiting), num(tot.in_flight)]);
    chLat.set({ times, tEnd, vals: [field('p50_ms'), field('p99_ms')] },
      last ? [num(last.p50_ms), num(last.p99_ms)] : [num(lat.p50_ms), num(lat.p99_ms)]);

    // ledger
    const L = d.ledger;
    const ls = $('ledger-state');
    if (!L) {
      setText(ls, 'no ledger');
      ls.className = 'none';
      setText($('ledger-error'), '');
      setText($('ledger-rps'), '—');
      setText($('ledger-eps'), '—');
      setText($('ledger-calls'), '—');
      chLedger.clear();
    } else {
      if (L.reachable) {
        setText(ls, 'reachable');
        ls.className = 'ok';
      } else {
        const since = parseTime(L.down_since);
        let t = 'unreachable';
        if (Number.isFinite(since)) {
          t += ' since ' + fmtDateTime(since);
          const now = isNum(d.time_ms) ? d.time_ms : Date.now();
          const dur = fmtDuration(now - since);
          if (dur) t += ' (' + dur + ')';
        }
        setText(ls, t);
        ls.className = 'bad';
      }
      const le = L.last_error;
      if (le && typeof le === 'object') {
        const when = parseTime(le.time);
        const parts = [];
        if (Number.isFinite(when)) parts.push(fmtDateTime(when));
        if (le.cause) parts.push(String(le.cause) + ':');
        let what = '';
        if (le.code != null) what += String(le.code) + ' ';
        if (le.name) what += String(le.name);
        if (what) parts.push(what.trim() + (le.message ? ':' : ''));
        if (le.message) parts.push(String(le.message));
        setText($('ledger-error'), parts.join(' '));
      } else {
        setText($('ledger-error'), '');
      }
      const rr = recentRate(sm, 'requests', 5000);
      const re = recentRate(sm, 'errors', 5000);
      setText($('ledger-rps'), rr == null ? '—' : fmtRate(rr));
      setText($('ledger-eps'), re == null ? '—' : fmtRate(re));
      setText($('ledger-calls'), `${fmtInt(L.requests)} requests, ${fmtInt(L.errors)} failed`);
      chLedger.set({ times, tEnd, vals: [rates(sm, 'requests'), rates(sm, 'errors')] }, [rr, re]);
    }
  }

  async function loadDashboard() {
    if (S.inflight.dash || !S.token) return null;
    S.inflight.dash = true;
    const gen = S.gen;
    try {
      const q = S.lastT != null ? '?since=' + enc(String(S.lastT)) : '';
      const d = await api('GET', '/v1/dashboard' + q);
      if (gen !== S.gen) return null;
      if (!d || typeof d !== 'object') throw new ApiError(200, 'bad answer', 'empty dashboard');
      const r0 = performance.now();
      S.dash = d;
      mergeSeries(d);
      renderDashboard(d);
      S.lastOk = Date.now();
      S.authFailed = false;
      clearError('dash');
      updateStatus();
      return { renderMs: performance.now() - r0, serverMs: num(d.server_ms) || 0 };
    } catch (e) {
      if (gen === S.gen) handleErr('dash', e);
      return null;
    } finally {
      S.inflight.dash = false;
    }
  }

  /* ------------------------------------------------------------- services */

  const rowPool = [];
  const NUMCOLS = ['depth', 'queued', 'waiting', 'in_flight', 'committed', 'invalid'];

  function makeRow() {
    const tr = document.createElement('tr');
    const c = {};
    for (const k of ['name', ...NUMCOLS, 'halted', 'owner', 'actions']) {
      c[k] = el('td', 'c-' + k);
      tr.appendChild(c[k]);
    }
    const btn = el('button');
    btn.type = 'button';
    c.actions.appendChild(btn);
    return { tr, c, btn, v: {} };
  }

  function setCell(r, key, text, cls) {
    const td = r.c[key];
    if (r.v[key] !== text) { td.textContent = text; r.v[key] = text; }
    const full = 'c-' + key + (cls ? ' ' + cls : '');
    if (td.className !== full) td.className = full;
  }

  function fillRow(r, s) {
    const name = String(s.name);
    if (r.tr.dataset.service !== name) r.tr.dataset.service = name;
    const remote = NUMCOLS.every((k) => s[k] == null);
    const trCls = (s.halted ? 'halted' : '') + (remote ? ' remote' : '');
    if (r.tr.className !== trCls.trim()) r.tr.className = trCls.trim();
    setCell(r, 'name', name);
    if (r.c.name.title !== name) r.c.name.title = name;
    for (const k of NUMCOLS) {
      const v = s[k];
      let cls = '';
      if (v === 0) cls = 'zero';
      else if (k === 'invalid' && isNum(v)) cls = 'nz';
      setCell(r, k, fmtInt(v), cls);
    }
    let halted = '';
    let htitle = '';
    if (s.halted) {
      const why = s.halt_reason != null && s.halt_reason !== '' ? String(s.halt_reason)
        : (s.halt_batch != null ? 'by batch ' + String(s.halt_batch) : 'yes');
      halted = 'halted: ' + why;
      htitle = halted + (s.halt_batch != null ? `\n(batch ${s.halt_batch}: click to open it)` : '');
    }
    const hb = s.halted && s.halt_batch != null ? String(s.halt_batch) : '';
    setCell(r, 'halted', halted, hb ? 'has-batch' : '');
    if (r.c.halted.title !== htitle) r.c.halted.title = htitle;
    if (hb) r.c.halted.dataset.batch = hb; else delete r.c.halted.dataset.batch;
    const owner = s.owner != null ? String(s.owner) : '';
    // In a cluster: a link to the owner's own dashboard (it asks for the
    // token again: another origin, another tab's storage).
    const ourl = typeof s.owner_url === 'string' && /^https?:\/\/[^\s]+$/.test(s.owner_url)
      ? s.owner_url.replace(/\/+$/, '') + '/ui' : '';
    const okey = owner + '\n' + ourl;
    if (r.v.owner !== okey) {
      r.v.owner = okey;
      if (ourl && owner) {
        const a = el('a');
        a.href = ourl;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        a.textContent = owner;
        r.c.owner.replaceChildren(a);
      } else {
        r.c.owner.textContent = owner;
      }
    }
    const otitle = owner && s.epoch != null ? `epoch ${s.epoch}` : '';
    if (r.c.owner.title !== otitle) r.c.owner.title = otitle;
    const bcls = s.halted ? 'act-resume' : 'act-halt danger';
    if (r.btn.className !== bcls) {
      r.btn.className = bcls;
      r.btn.textContent = s.halted ? 'resume' : 'halt';
    }
    r.btn.disabled = false;
  }

  function renderServices(d) {
    const list = Array.isArray(d.services) ? d.services : [];
    const body = $('svc-body');
    while (rowPool.length < list.length) rowPool.push(makeRow());
    for (let i = 0; i < list.length; i++) fillRow(rowPool[i], list[i] || {});
    // attach exactly the rows needed, in one go when the count changes
    if (body.childElementCount !== list.length || body.firstElementChild !== (rowPool[0] && rowPool[0].tr)) {
      const frag = document.createDocumentFragment();
      for (let i = 0; i < list.length; i++) frag.appendChild(rowPool[i].tr);
      body.replaceChildren(frag);
    }
    const off = isNum(d.offset) ? d.offset : S.svc.offset;
    const matched = isNum(d.matched) ? d.matched : list.length;
    const total = isNum(d.total) ? d.total : matched;
    setText($('svc-page'), list.length ? `${off + 1}–${off + list.length} of ${matched}` : `0 of ${matched}`);
    const filtered = S.svc.q !== '' || S.svc.filter !== 'all';
    let extra = '';
    if (matched === 0) extra = total === 0 ? 'no services yet' : `no service matches (${total} services)`;
    else if (filtered) extra = `(${total} services)`;
    setText($('svc-total'), extra);
    $('svc-prev').disabled = off <= 0;
    $('svc-next').disabled = off + list.length >= matched;
    for (const th of document.querySelectorAll('#svc-table th[data-sort]')) {
      const on = th.dataset.sort === S.svc.sort;
      th.classList.toggle('sorted-asc', on && S.svc.order === 'asc');
      th.classList.toggle('sorted-desc', on && S.svc.order === 'desc');
      th.setAttribute('aria-sort', on ? (S.svc.order === 'asc' ? 'ascending' : 'descending') : 'none');
    }
  }

  function svcQuery() {
    const v = S.svc;
    let q = `/v1/services?offset=${v.offset}&limit=${PAGE}&sort=${enc(v.sort)}&order=${enc(v.order)}&filter=${enc(v.filter)}`;
    if (v.q) q += '&q=' + enc(v.q);
    return q;
  }

  async function loadServices() {
    if (S.inflight.svc || !S.token) return null;
    S.inflight.svc = true;
    S.svcDirty = false;
    const gen = S.gen;
    const path = svcQuery();
    let out = null;
    try {
      const d = await api('GET', path);
      if (gen !== S.gen) return null;
      if (path !== svcQuery()) return null;   // the view changed meanwhile: reloaded below
      if (!d || typeof d !== 'object') throw new ApiError(200, 'bad answer', 'empty services page');
      const list = Array.isArray(d.services) ? d.services : [];
      if (list.length === 0 && S.svc.offset > 0 && isNum(d.matched) && d.matched > 0) {
        // the page went past the end (services went away, a narrower filter)
        S.svc.offset = Math.floor((d.matched - 1) / PAGE) * PAGE;
        S.svcDirty = true;
        return null;
      }
      const r0 = performance.now();
      S.svc.data = d;
      renderServices(d);
      clearError('svc');
      out = { renderMs: performance.now() - r0, serverMs: num(d.server_ms) || 0 };
    } catch (e) {
      if (gen === S.gen) handleErr('svc', e);
    } finally {
      S.inflight.svc = false;
      if (S.svcDirty && S.token && gen === S.gen) setTimeout(loadServices, 0);
    }
    return out;
  }

  function requestServices() {
    if (!S.token) return;
    if (S.inflight.svc) { S.svcDirty = true; return; }
    loadServices();
  }

  /* -------------------------------------------------------------- polling */

  async function tick() {
    if (!S.token || document.hidden) { updateStatus(); return; }
    const jobs = [];
    if (!S.inflight.dash) jobs.push(loadDashboard());
    if (!S.inflight.svc) jobs.push(loadServices());
    if (!jobs.length) return;             // the previous refresh still runs: skip
    const t0 = performance.now();
    const gen = S.gen;
    const res = await Promise.all(jobs);
    if (gen !== S.gen) return;
    const ok = res.filter(Boolean);
    if (!ok.length) return;
    const total = performance.now() - t0;
    const render = ok.reduce((a, r) => a + r.renderMs, 0);
    const server = ok.reduce((a, r) => a + r.serverMs, 0);
    stats.refreshes++;
    stats.lastRefreshMs = total;
    stats.maxRefreshMs = Math.max(stats.maxRefreshMs, total);
    stats.lastRenderMs = render;
    stats.maxRenderMs = Math.max(stats.maxRenderMs, render);
    stats.lastServerMs = server;
    setText($('refresh-cost'),
      `refresh ${total.toFixed(1)} ms (render ${render.toFixed(1)}) · server ${server.toFixed(2)} ms`);
  }

  /* -------------------------------------------------------------- confirm */

  let confirmResolve = null;
  function confirmDialog(text, opts) {
    if (confirmResolve) confirmResolve(null);
    const o = opts || {};
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = o.ok || 'confirm';
    $('confirm-cancel').textContent = o.no || 'cancel';
    $('confirm-reason-row').hidden = !o.reason;
    $('confirm-reason').value = '';
    $('confirm').hidden = false;
    (o.reason ? $('confirm-reason') : $('confirm-ok')).focus();
    return new Promise((resolve) => { confirmResolve = resolve; });
  }
  function closeConfirm(ok) {
    const r = confirmResolve;
    confirmResolve = null;
    $('confirm').hidden = true;
    if (r) r(ok ? $('confirm-reason').value.trim() : null);
  }

  /* -------------------------------------------------------------- actions */

  async function haltService(name, btn) {
    const reason = await confirmDialog(
      `Halt service “${name}”? Its queued batches stay queued and nothing more is submitted for it until it is resumed.`,
      { reason: true, ok: 'halt' });
    if (reason === null || !S.token) return;
    if (btn) btn.disabled = true;
    try {
      await api('POST', `/v1/services/${enc(name)}/halt`, reason ? { reason } : undefined);
      clearError('action');
      toast(`service ${name} halted`);
    } catch (e) {
      handleErr('action', e);
      if (e instanceof ApiError && e.status !== 401) toast(`halt failed: ${e.text()}`, true);
    }
    requestServices();
    tick();
  }

  async function resumeService(name, btn) {
    const ok = await confirmDialog(`Resume service “${name}”? Its batches will be submitted again.`, { ok: 'resume' });
    if (ok === null || !S.token) return;
    if (btn) btn.disabled = true;
    try {
      await api('POST', `/v1/services/${enc(name)}/resume`);
      clearError('action');
      toast(`service ${name} resumed`);
    } catch (e) {
      handleErr('action', e);
      if (e instanceof ApiError && e.status !== 401) toast(`resume failed: ${e.text()}`, true);
    }
    requestServices();
    tick();
  }

  async function cancelBatch() {
    const b = S.batchData;
    if (!b) return;
    const id = String(b.id);
    const ok = await confirmDialog(
      `Cancel batch “${id}”? It becomes INVALID (reason: cancelled), its locks are released and the batches that depend on it become INVALID too.`,
      { ok: 'cancel the batch', no: 'keep it' });
    if (ok === null || !S.token) return;
    $('batch-cancel').disabled = true;
    try {
      const nb = await api('DELETE', `/v1/batches/${enc(id)}`);
      clearError('action');
      toast(`batch ${id} cancelled`);
      if (nb && typeof nb === 'object' && nb.id != null && S.batchId === id) renderBatch(nb);
    } catch (e) {
      handleErr('action', e);
      if (e instanceof ApiError && e.status !== 401) toast(`cancel failed: ${e.text()}`, true);
    }
    $('batch-cancel').disabled = false;
    if (S.batchId === id) openBatch(id, false);
    requestServices();
    tick();
  }

  /* ---------------------------------------------------------------- batch */

  async function openBatch(id, push) {
    id = String(id).trim();
    if (!id) return;
    if (push !== false && S.batchId && S.batchId !== id) {
      S.batchStack.push(S.batchId);
      if (S.batchStack.length > 50) S.batchStack.shift();
    }
    S.batchId = id;
    const inp = $('batch-input');
    if (inp.value !== id) inp.value = id;
    $('batch-back').hidden = S.batchStack.length === 0;
    if (!S.token) { showTokenForm(); return; }
    const seq = ++S.batchSeq;
    const gen = S.gen;
    try {
      const b = await api('GET', '/v1/batches/' + enc(id));
      if (seq !== S.batchSeq || gen !== S.gen) return;
      if (!b || typeof b !== 'object') throw new ApiError(200, 'bad answer', 'empty batch');
      renderBatch(b);
      clearError('batch');
    } catch (e) {
      if (seq !== S.batchSeq || gen !== S.gen) return;
      if (e instanceof ApiError && e.status === 404) {
        clearError('batch');
        showBatchMissing(id);
      } else {
        handleErr('batch', e);
      }
    }
  }

  function showBatchMissing(id) {
    S.batchData = null;
    $('batch-view').hidden = false;
    $('batch-body').hidden = true;
    $('batch-reload').hidden = false;
    const m = $('batch-missing');
    m.textContent = `no batch with that id: ${id}`;
    m.hidden = false;
  }

  function renderBatch(b) {
    S.batchData = b;
    $('batch-view').hidden = false;
    $('batch-missing').hidden = true;
    $('batch-body').hidden = false;
    $('batch-reload').hidden = false;
    const id = b.id != null ? String(b.id) : S.batchId;
    setText($('batch-id'), id);
    const st = String(b.state || '?');
    const badge = $('batch-state');
    badge.textContent = st;
    badge.className = 'badge' + (STATES.includes(st) ? ' st-' + st : '');
    setText($('batch-service'), b.service != null ? String(b.service) : '—');
    setText($('batch-seq'), b.seq != null ? String(b.seq) : '—');
    const tparts = [];
    if (isNum(b.enqueued_ms)) tparts.push('enqueued ' + fmtDateTime(b.enqueued_ms));
    if (isNum(b.finished_ms)) {
      let f = 'finished ' + fmtDateTime(b.finished_ms);
      if (isNum(b.enqueued_ms)) f += ` (after ${fmtDuration(b.finished_ms - b.enqueued_ms)})`;
      tparts.push(f);
    } else if (isNum(b.enqueued_ms) && S.dash && isNum(S.dash.time_ms)) {
      tparts.push(`${fmtDuration(S.dash.time_ms - b.enqueued_ms)} ago`);
    }
    setText($('batch-times'), tparts.length ? tparts.join(' · ') : '—');
    setText($('batch-reason'), b.reason != null && b.reason !== '' ? String(b.reason) : '—');
    setText($('batch-ledger'), b.ledger_id != null ? String(b.ledger_id) : '—');
    setText($('batch-explain'), b.explain != null ? String(b.explain) : '');
    $('batch-cancel').hidden = !(st === 'QUEUED' || st === 'WAITING');
    $('batch-cancel').disabled = false;
    const waits = Array.isArray(b.waits_on) ? b.waits_on.filter((w) => w && typeof w === 'object') : [];
    $('batch-waits').hidden = waits.length === 0;
    renderBlockers(waits);
    renderGraph(id, st, waits);
  }

  function blockerLink(id) {
    const a = el('a', 'blocker', String(id));
    a.href = '#';
    a.dataset.batch = String(id);
    a.title = 'open batch ' + String(id);
    return a;
  }
  function modeSpan(mode) {
    const m = String(mode || '');
    return el('span', m === 'write' ? 'mode-write' : m === 'read' ? 'mode-read' : '', m);
  }

  function renderBlockers(waits) {
    const ul = $('batch-blockers');
    const frag = document.createDocumentFragment();
    for (const w of waits) {
      const li = el('li');
      const holders = Array.isArray(w.holders) ? w.holders.filter((h) => h && h.id != null) : [];
      if (w.kind === 'dep') {
        li.append(el('span', 'kind', 'dependency '), blockerLink(w.what),
          document.createTextNode(' — ' + (w.state != null ? String(w.state) : '?')));
      } else if (w.kind === 'address' || w.kind === 'serial') {
        if (w.kind === 'address') {
          const code = el('code', 'mono', abbrev(w.what, 24));
          code.title = String(w.what);
          li.append(el('span', 'kind', 'address '), code, document.createTextNode(' ('), modeSpan(w.mode),
            document.createTextNode(') held by '));
        } else {
          li.append(el('span', 'kind', 'service order: after '));
        }
        holders.forEach((h, i) => {
          if (i) li.append(document.createTextNode(', '));
          li.append(blockerLink(h.id));
          if (h.mode) li.append(document.createTextNode(' ('), modeSpan(h.mode), document.createTextNode(')'));
        });
        if (!holders.length) {
          if (w.kind === 'serial' && w.what != null) li.append(blockerLink(w.what));
          else li.append(document.createTextNode('—'));
        }
        if (isNum(w.more) && w.more > 0) li.append(el('span', 'kind', ` +${w.more} more`));
        if (isNum(w.earlier) && w.earlier > 0) li.append(el('span', 'kind', ` (${w.earlier} earlier in the service)`));
      } else {
        li.append(el('span', 'kind', String(w.kind || '?') + ' '), document.createTextNode(String(w.what != null ? w.what : '')));
      }
      frag.appendChild(li);
    }
    ul.replaceChildren(frag);
  }

  function renderGraph(selfId, selfState, waits) {
    const g = $('batch-graph');
    g.replaceChildren();
    if (!waits.length) return;

    // middle column: one node per address / dep / serial entry
    const mids = [];
    for (const w of waits) {
      const holders = Array.isArray(w.holders) ? w.holders.filter((h) => h && h.id != null) : [];
      if (w.kind === 'dep') {
        mids.push({ label: String(w.what), sub: 'dep · ' + String(w.state != null ? w.state : '?'), batch: String(w.what), mode: '', holders: [], full: String(w.what) });
      } else if (w.kind === 'address') {
        let sub = 'address · ' + String(w.mode || '');
        if (isNum(w.more) && w.more > 0) sub += ` · +${w.more} more`;
        mids.push({ label: String(w.what), sub, mode: String(w.mode || ''), holders, full: String(w.what) });
      } else if (w.kind === 'serial') {
        let sub = 'service order';
        if (isNum(w.earlier) && w.earlier > 0) sub += ` · ${w.earlier} earlier`;
        mids.push({ label: 'after ' + String(w.what), sub, mode: '', holders, full: 'serial: after ' + String(w.what) });
      } else {
        mids.push({ label: String(w.what != null ? w.what : '?'), sub: String(w.kind || ''), mode: '', holders, full: String(w.what) });
      }
    }
    let midMore = 0;
    let shownMids = mids;
    if (mids.length > GRAPH_MAX) {
      shownMids = mids.slice(0, GRAPH_MAX - 1);
      midMore = mids.length - shownMids.length;
    }
    // right column: the holders, each once
    const rights = [];
    const ridx = new Map();
    const edges = [];   // [midIndex, rightIndex, mode]
    let rightMore = 0;
    const rightExtra = new Set();
    shownMids.forEach((m, mi) => {
      for (const h of m.holders) {
        const id = String(h.id);
        let ri = ridx.get(id);
        if (ri === undefined) {
          if (rights.length >= GRAPH_MAX - 1) { rightExtra.add(id); continue; }
          ri = rights.length;
          ridx.set(id, ri);
          rights.push({ id, modes: new Set() });
        }
        if (h.mode) rights[ri].modes.add(String(h.mode));
        edges.push([mi, ri, String(h.mode || '')]);
      }
    });
    rightMore = rightExtra.size;

    const NH = 30, ROW = 38, TOP = 22;
    const XS = 6, WS = 170, XM = 246, WM = 230, XR = 556, WR = 176;
    const W = XR + WR + 6;
    const nMid = shownMids.length + (midMore ? 1 : 0);
    const nRight = rights.length + (rightMore ? 1 : 0);
    const rows = Math.max(nMid, nRight, 1);
    const H = TOP + rows * ROW + 4;
    g.setAttribute('viewBox', `0 0 ${W} ${H}`);
    g.setAttribute('width', String(W));
    g.setAttribute('height', String(H));
    const yOf = (i, n) => TOP + i * ROW + ((rows - n) * ROW) / 2;

    const defs = svg('defs');
    for (const k of ['plain', 'read', 'write']) {
      const mk = svg('marker', { id: 'ordo-arrow-' + k, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
      const p = svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead ' + k });
      if (k === 'read') p.setAttribute('fill', '#2563eb');
      else if (k === 'write') p.setAttribute('fill', '#dc2626');
      mk.appendChild(p);
      defs.appendChild(mk);
    }
    g.appendChild(defs);

    const title = (x, t, anchor) => {
      const e = svg('text', { x, y: 10, class: 'col-title', 'text-anchor': anchor || 'start' });
      e.textContent = t;
      g.appendChild(e);
    };
    title(XS, 'this batch');
    title(XM, 'waits on');
    if (nRight) title(XR, 'held by');

    const edgeLayer = svg('g');
    g.appendChild(edgeLayer);
    const curve = (x1, y1, x2, y2, mode) => {
      const mx = (x1 + x2) / 2;
      const k = mode === 'read' || mode === 'write' ? mode : 'plain';
      const p = svg('path', {
        d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 1},${y2}`,
        class: 'edge ' + (k === 'plain' ? '' : k),
        'marker-end': `url(#ordo-arrow-${k})`,
      });
      edgeLayer.appendChild(p);
    };

    const node = (x, y, w, label, sub, cls, batch, full) => {
      const chars = Math.floor((w - 12) / 7.3);
      let wrap;
      if (batch != null) {
        wrap = svg('a', { href: '#', class: 'blocker node ' + cls, 'data-batch': batch, 'aria-label': 'open batch ' + batch });
      } else {
        wrap = svg('g', { class: 'node ' + cls });
      }
      const t = svg('title');
      t.textContent = (full != null ? full : label) + (sub ? ' — ' + sub : '');
      wrap.appendChild(t);
      wrap.appendChild(svg('rect', { x, y, width: w, height: NH, rx: 4, ry: 4 }));
      const tl = svg('text', { x: x + 6, y: y + (sub ? 10 : NH / 2) });
      tl.textContent = abbrev(label, chars);
      wrap.appendChild(tl);
      if (sub) {
        const ts = svg('text', { x: x + 6, y: y + 22, class: 'sub' });
        ts.textContent = abbrev(sub, Math.floor((w - 12) / 6.1));
        wrap.appendChild(ts);
      }
      g.appendChild(wrap);
    };

    const selfY = TOP + ((rows - 1) * ROW) / 2;
    node(XS, selfY, WS, selfId, selfState, 'self', null, selfId);
    shownMids.forEach((m, i) => {
      const y = yOf(i, nMid);
      curve(XS + WS, selfY + NH / 2, XM, y + NH / 2, m.mode);
      node(XM, y, WM, m.label, m.sub, m.batch != null ? 'dep' : 'addr', m.batch != null ? m.batch : null, m.full);
    });
    if (midMore) node(XM, yOf(shownMids.length, nMid), WM, `+${midMore} more`, '', 'more', null, `${midMore} more entries: see the list above`);
    rights.forEach((r, i) => {
      const y = yOf(i, nRight);
      node(XR, y, WR, r.id, [...r.modes].join(', '), 'holder', r.id, r.id);
    });
    if (rightMore) node(XR, yOf(rights.length, nRight), WR, `+${rightMore} more`, '', 'more', null, `${rightMore} more holders: see the list above`);
    for (const [mi, ri, mode] of edges) {
      curve(XM + WM, yOf(mi, nMid) + NH / 2, XR, yOf(ri, nRight) + NH / 2, mode);
    }
  }

  /* ----------------------------------------------------------------- init */

  function bind() {
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const v = $('token-input').value.trim();
      if (!v) { $('token-input').focus(); return; }
      setToken(v);
    });
    $('token-change').addEventListener('click', () => {
      S.token = null;
      S.gen++;
      S.authFailed = false;
      storeToken(null);
      resetData();
      S.errors.clear();
      renderErrors();
      showTokenForm();
    });
    $('error').addEventListener('click', () => { S.errors.clear(); renderErrors(); });

    // services controls
    let filterTimer = 0;
    $('svc-filter').addEventListener('input', () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => {
        const q = $('svc-filter').value.trim();
        if (q === S.svc.q) return;
        S.svc.q = q;
        S.svc.offset = 0;
        requestServices();
      }, 250);
    });
    $('svc-state').addEventListener('change', () => {
      const f = $('svc-state').value;
      S.svc.filter = FILTERS.includes(f) ? f : 'all';
      S.svc.offset = 0;
      requestServices();
    });
    for (const th of document.querySelectorAll('#svc-table th[data-sort]')) {
      th.tabIndex = 0;
      const go = () => {
        const k = th.dataset.sort;
        if (!SORTS.includes(k)) return;
        if (S.svc.sort === k) S.svc.order = S.svc.order === 'asc' ? 'desc' : 'asc';
        else { S.svc.sort = k; S.svc.order = k === 'name' ? 'asc' : 'desc'; }
        S.svc.offset = 0;
        if (S.svc.data) renderServices(S.svc.data);   // header state at once
        requestServices();
      };
      th.addEventListener('click', go);
      th.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
    }
    $('svc-prev').addEventListener('click', () => {
      S.svc.offset = Math.max(0, S.svc.offset - PAGE);
      requestServices();
    });
    $('svc-next').addEventListener('click', () => {
      S.svc.offset += PAGE;
      requestServices();
    });
    $('svc-body').addEventListener('click', (e) => {
      const t = e.target;
      if (!(t instanceof Element)) return;
      const tr = t.closest('tr[data-service]');
      if (!tr) return;
      const name = tr.dataset.service;
      const btn = t.closest('button');
      if (btn) {
        if (btn.classList.contains('act-halt')) haltService(name, btn);
        else if (btn.classList.contains('act-resume')) resumeService(name, btn);
        return;
      }
      const hc = t.closest('td.c-halted');
      if (hc && hc.dataset.batch) {
        openBatch(hc.dataset.batch);
        $('batch-view').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      }
    });

    // batch view
    const go = () => openBatch($('batch-input').value);
    $('batch-go').addEventListener('click', go);
    $('batch-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); go(); } });
    $('batch-back').addEventListener('click', () => {
      const prev = S.batchStack.pop();
      if (prev != null) openBatch(prev, false);
    });
    $('batch-reload').addEventListener('click', () => { if (S.batchId) openBatch(S.batchId, false); });
    $('batch-cancel').addEventListener('click', cancelBatch);
    document.addEventListener('click', (e) => {
      const t = e.target;
      if (!(t instanceof Element)) return;
      const b = t.closest('.blocker');
      if (!b) return;
      e.preventDefault();
      const id = b.getAttribute('data-batch');
      if (id != null && id !== '') openBatch(id);
    });

    // confirm dialog
    $('confirm-ok').addEventListener('click', () => closeConfirm(true));
    $('confirm-cancel').addEventListener('click', () => closeConfirm(false));
    $('confirm').addEventListener('click', (e) => { if (e.target === $('confirm')) closeConfirm(false); });
    $('confirm-reason').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); closeConfirm(true); } });
    document.addEventListener('keydown', (e) => {
      if ($('confirm').hidden) return;
      if (e.key === 'Escape') { e.preventDefault(); closeConfirm(false); }
    });

    document.addEventListener('visibilitychange', () => {
      updateStatus();
      if (!document.hidden) tick();
    });
    window.addEventListener('hashchange', readHash);
    window.addEventListener('resize', redrawAll);
  }

  function init() {
    initCharts();
    bind();
    resetData();
    const stored = loadToken();
    if (stored && validToken(stored)) S.token = stored;
    readHash();                       // #token=… wins over the stored one
    if (S.token) {
      $('token-form').hidden = true;
      $('token-change').hidden = false;
      if (S.gen === 0) { S.gen++; tick(); }
    } else {
      showTokenForm();
    }
    updateStatus();
    setInterval(tick, POLL_MS);
  }

  init();
})();
