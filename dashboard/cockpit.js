/*
 * The cockpit page. On open and on every reconnect it loads the current picture through /mcp (list_canaries,
 * list_jobs, model_gates, then canary_status for the check strips), then follows the live stream from the event
 * seq the lists were read at (`asOf`): an event changes what the page shows only if it is newer than the
 * picture, so nothing is missed and nothing counted twice. No dependencies, no build step.
 */
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const ACTIVE = ['running', 'paused', 'held'];
  const ENDED = ['promoted', 'rolled_back', 'dry_run'];
  const LEDGER_MAX = 400;
  const LEDGER_BACKLOG = 200;
  const STRIP = 12;
  const JOBS_MAX = 50;
  const CARDS_MAX = 60;

  const page = {
    key: sessionStorage.getItem('cockpitKey') || '',
    canaries: new Map(),
    jobs: new Map(),
    gates: new Map(),
    /** Per kind: the seq the loaded picture is as of; older events only reach the ledger. */
    asOf: { canary: Infinity, job: Infinity, model: Infinity },
    lastLedgerSeq: 0,
    /** Per topic, its newest ledger line (where repeated undecided checks are counted). */
    lastLine: new Map(),
    client: null,
    rpcId: 0,
    detail: null,
  };

  /* ---------- helpers ---------- */

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'text') node.textContent = value;
      else if (name === 'class') node.className = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  /** `2026-11-29 23:39:59` or an RFC 3339 time → a Date (UTC). */
  function parseTime(text) {
    if (!text) return null;
    const iso = /Z$|[+-]\d\d:\d\d$/.test(text) ? text : text.replace(' ', 'T') + 'Z';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  const clock = (d) => (d ? d.toISOString().slice(11, 19) : '');
  function span(ms) {
    if (!Number.isFinite(ms)) return '';
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  }
  const pct = (v) => (typeof v === 'number' ? (v * 100).toFixed(v < 0.01 ? 2 : 1) + '%' : '—');
  const ms = (v) => (typeof v === 'number' ? Math.round(v) + ' ms' : '—');

  async function call(name, args) {
    const headers = { 'Content-Type': 'application/json' };
    if (page.key) headers['X-API-Key'] = page.key;
    let body;
    try {
      const res = await fetch('/mcp', {
        method: 'POST',
        headers,
        body: JSON.stringify({ jsonrpc: '2.0', id: ++page.rpcId, method: 'tools/call', params: { name, arguments: args } }),
      });
      body = await res.json();
    } catch (e) {
      return { ok: false, text: 'cannot reach the server: ' + e.message };
    }
    if (body.error) return { ok: false, text: body.error.message };
    if (body.result.isError) return { ok: false, text: body.result.content[0].text };
    return { ok: true, value: body.result.structuredContent };
  }

  function say(node, outcome, okText) {
    node.textContent = outcome.ok ? okText : outcome.text;
    node.classList.toggle('error', !outcome.ok);
  }

  /* ---------- the ask dialog (promote, abort) ---------- */

  function ask(title, text) {
    const dialog = $('ask');
    $('ask-title').textContent = title;
    $('ask-text').textContent = text;
    $('ask-reason').value = '';
    return new Promise((resolve) => {
      const done = (value) => {
        $('ask-form').onsubmit = null;
        $('ask-cancel').onclick = null;
        dialog.close();
        resolve(value);
      };
      $('ask-form').onsubmit = (ev) => {
        ev.preventDefault();
        const reason = $('ask-reason').value.trim();
        if (reason) done(reason);
      };
      $('ask-cancel').onclick = () => done(null);
      dialog.onclose = () => resolve(null);
      dialog.showModal();
      $('ask-reason').focus();
    });
  }

  /* ---------- canaries ---------- */

  function policyLine(p) {
    if (!p) return '';
    return 'p95 ≤ ' + p.latency_p95_ms + ' ms · errors ≤ ' + pct(p.error_rate) + ' · every ' + p.interval +
      ' · window ' + p.window + ' · deadline ' + p.deadline;
  }

  /** A check's kind for its chip and point: pass, fail, critical or no_decision. */
  function kindOf(check) {
    if (check.verdict === 'fail' && /^critical/.test(check.reasonCode || '')) return 'critical';
    return check.verdict || 'no_decision';
  }

  function endWords(c) {
    const words = {
      slo_met: 'promoted: the SLO was met on enough checks in a row',
      manual: c.status === 'promoted' ? 'promoted by hand' : 'aborted by hand',
      consecutive_failures: 'rolled back: too many failing checks in a row',
      critical: 'rolled back: a critical breach',
      deadline: 'rolled back: undecided at its deadline',
      unrecoverable: 'rolled back: could not be resumed after a restart',
    };
    const head = words[c.reasonCode] || c.status;
    return c.reason ? head + ' — “' + c.reason + '”' : head;
  }

  function canaryFrom(view) {
    const known = page.canaries.get(view.canaryId) || { checks: [], result: '' };
    const c = Object.assign(known, {
      id: view.canaryId, model: view.modelId, from: view.fromGate, to: view.toGate, status: view.status,
      policy: view.policy, dryRun: view.dryRun, reason: view.reason, reasonCode: view.reasonCode,
      checkCount: view.checks, passes: view.consecutivePasses, failures: view.consecutiveFailures,
      undecided: view.consecutiveNoDecision, created: parseTime(view.createdAt),
      deadline: parseTime(view.deadlineAt), finished: parseTime(view.finishedAt),
    });
    if (Array.isArray(view.recentChecks)) {
      const first = view.checks - view.recentChecks.length + 1;
      c.checks = view.recentChecks.map((m, i) => ({
        check: first + i, at: parseTime(m.evaluatedAt), latency: m.latency_p95_ms, errorRate: m.error_rate,
        requests: m.requests, verdict: m.verdict, reasonCode: m.reasonCode,
      }));
      c.stripLoaded = true;
    }
    page.canaries.set(c.id, c);
    return c;
  }

  function actionButton(c, label, enabled, run, cls) {
    return el('button', { type: 'button', class: cls, disabled: !enabled, 'data-action': label.toLowerCase(), onclick: run, text: label });
  }

  async function act(c, tool, args, done) {
    const outcome = await call(tool, Object.assign({ canaryId: c.id }, args));
    c.result = outcome.ok ? done : outcome.text;
    c.resultError = !outcome.ok;
    if (outcome.ok) canaryFrom(outcome.value);
    drawCanaries();
  }

  function card(c) {
    const active = ACTIVE.includes(c.status);
    const now = Date.now();
    const p = c.policy || {};
    const times = [];
    if (c.created) times.push('age ' + span((c.finished ? c.finished.getTime() : now) - c.created.getTime()));
    if (active && c.deadline) times.push('deadline in ' + span(c.deadline.getTime() - now));
    const chips = el('div', { class: 'chips', 'aria-label': 'last checks' },
      ...c.checks.slice(-STRIP).map((k) => el('span', {
        class: 'chip ' + kindOf(k), role: 'img',
        title: 'check ' + k.check + ': ' + k.verdict + ' (' + k.reasonCode + ') p95 ' + ms(k.latency) + ', errors ' + pct(k.errorRate),
        'aria-label': 'check ' + k.check + ' ' + kindOf(k),
      })));
    const body = el('article', { class: 'card', 'data-canary': c.id, 'data-status': c.status },
      el('div', { class: 'head' },
        el('h3', {}, el('a', { href: '#canary/' + c.id, text: c.model + ': ' + c.from + ' → ' + c.to })),
        el('span', { class: 'badge ' + c.status, text: c.dryRun && active ? c.status + ' (dry run)' : c.status })),
      el('div', { class: 'dim' }, el('code', { text: c.id }), ' ',
        el('button', { type: 'button', 'aria-label': 'copy the id ' + c.id, onclick: () => navigator.clipboard && navigator.clipboard.writeText(c.id), text: 'copy' })),
      el('div', { class: 'policy', text: policyLine(p) }),
      el('div', { class: 'progress', text: 'passes ' + (c.passes || 0) + '/' + (p.successesToPromote || '?') +
        ' · failures ' + (c.failures || 0) + '/' + (p.failureLimit || '?') +
        ' · undecided ' + (c.undecided || 0) + '/' + (p.maxNoDecision || '?') + ' · ' + (c.checkCount || 0) + ' checks' }),
      el('div', { class: 'dim', text: times.join(' · ') }),
      chips,
      ENDED.includes(c.status) ? el('div', { class: 'why', text: endWords(c) }) : null,
      el('div', { class: 'actions' },
        actionButton(c, 'Pause', c.status === 'running', () => act(c, 'pause_canary', {}, 'paused')),
        actionButton(c, 'Resume', c.status === 'paused' || c.status === 'held', () => act(c, 'resume_canary', {}, 'resumed')),
        actionButton(c, 'Promote', active, async () => {
          const reason = await ask('Promote ' + c.model + ' to ' + c.to + '?', 'The canary ends now and the model moves to ' + c.to + '. Say why:');
          if (reason) act(c, 'promote_canary', { reason }, 'promoted');
        }, 'go'),
        actionButton(c, 'Abort', active, async () => {
          const reason = await ask('Abort and roll back ' + c.model + '?', c.model + ' stays at ' + c.from + '; the canary ends as rolled back. Say why:');
          if (reason) act(c, 'abort_canary', { reason }, 'aborted');
        }, 'danger')),
      el('p', { class: 'message' + (c.resultError ? ' error' : ''), role: 'status', text: c.result || '' }));
    return body;
  }

  function recentRow(c) {
    return el('div', { class: 'recent-row', 'data-canary': c.id, 'data-status': c.status },
      el('a', { href: '#canary/' + c.id, text: c.model + ': ' + c.from + ' → ' + c.to }),
      el('span', { class: 'badge ' + c.status, text: c.status }),
      el('span', { class: 'why', text: endWords(c) }),
      el('span', { class: 'dim', text: c.finished ? clock(c.finished) : '' }));
  }

  /** Many events a second redraw the cards once a frame at most. */
  let drawPending = false;
  function scheduleCanaries() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      drawCanaries();
    });
  }

  function drawCanaries() {
    const showAll = $('show').value === 'all';
    const model = $('model-filter').value;
    const list = Array.from(page.canaries.values())
      .filter((c) => !model || c.model === model)
      .sort((a, b) => (b.created || 0) - (a.created || 0));
    const shown = list.filter((c) => showAll || ACTIVE.includes(c.status));
    const recent = list.filter((c) => ENDED.includes(c.status));
    $('canaries').replaceChildren(...shown.slice(0, CARDS_MAX).map(card));
    $('no-canaries').hidden = shown.length > 0;
    $('more-canaries').hidden = shown.length <= CARDS_MAX;
    $('more-canaries').textContent = (shown.length - CARDS_MAX) + ' more not shown: pick a model to narrow the list.';
    $('recent-box').hidden = showAll;
    $('recent-count').textContent = recent.length;
    $('recent-list').replaceChildren(...recent.slice(0, 50).map(recentRow));
    const models = Array.from(new Set(Array.from(page.canaries.values()).map((c) => c.model))).sort();
    const select = $('model-filter');
    const current = Array.from(select.options).slice(1).map((o) => o.value);
    if (models.join() !== current.join()) {
      select.replaceChildren(el('option', { value: '', text: 'all models' }), ...models.map((m) => el('option', { value: m, text: m })));
      select.value = models.includes(model) ? model : '';
    }
    if (page.detail) drawDetailHead();
  }

  async function loadStrip(c) {
    const outcome = await call('canary_status', { canaryId: c.id });
    if (outcome.ok) canaryFrom(outcome.value);
  }

  function onCanaryEvent(e) {
    const d = e.data;
    let c = page.canaries.get(d.canaryId);
    if (!c) {
      // A canary the picture did not have: its state comes from the server, not from this one event.
      c = { id: d.canaryId, model: d.modelId, from: d.fromGate || '', to: d.toGate || d.gate || '', status: d.status, checks: [], result: '' };
      page.canaries.set(c.id, c);
      loadStrip(c).then(scheduleCanaries);
    }
    if (d.status) c.status = d.status;
    if (e.event === 'started' && d.policy) Object.assign(c, { policy: d.policy, from: d.fromGate, to: d.toGate, dryRun: d.dryRun, created: parseTime(d.ts) });
    if (e.event === 'metric') {
      const check = { check: d.check, at: parseTime(d.ts), latency: d.latency_p95_ms, errorRate: d.error_rate, requests: d.requests, verdict: d.verdict, reasonCode: d.reasonCode };
      if (!c.checks.some((k) => k.check === check.check)) c.checks.push(check);
      c.checks = c.checks.slice(-STRIP * 4);
      Object.assign(c, { checkCount: d.check, passes: d.passes, failures: d.failures, undecided: d.undecided });
      if (page.detail && page.detail.id === c.id) addDetailCheck(check);
    }
    if (ENDED.includes(e.event)) {
      Object.assign(c, { reason: d.reason, reasonCode: d.reasonCode, finished: parseTime(d.ts) });
    }
    scheduleCanaries();
  }

  /* ---------- the detail view ---------- */

  function scale(lo, hi, from, to) {
    const k = hi === lo ? 0 : (to - from) / (hi - lo);
    return (v) => from + (v - lo) * k;
  }

  function niceTicks(max) {
    const raw = max / 4;
    const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const ticks = [0];
    while (ticks[ticks.length - 1] < max) ticks.push(ticks.length * step);
    return ticks;
  }

  /**
   * A chart of one SLI: time axis (UTC) and value axis with numbers, the SLO line labelled with its value,
   * points coloured by verdict (hover: the check), the line broken where a check had no value, and a grey mark
   * on the time axis for each such check.
   */
  function chart(title, unit, checks, value, slo, format) {
    const W = 560, H = 230, L = 56, R = 12, T = 30, B = 40;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    const add = (parent, tag, attrs, text) => {
      const n = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      if (text !== undefined) n.textContent = text;
      parent.appendChild(n);
      return n;
    };
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('class', 'chart');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', title + ' by check, SLO ' + format(slo));
    add(svg, 'title', {}, title);
    const values = checks.map(value).filter((v) => typeof v === 'number');
    const top = Math.max(slo * 1.4, ...values) || 1;
    const ticks = niceTicks(top);
    const yMax = ticks[ticks.length - 1];
    const y = scale(0, yMax, H - B, T);
    const times = checks.map((k) => (k.at ? k.at.getTime() : 0));
    const t0 = Math.min(...times), t1 = Math.max(...times);
    const x = checks.length > 1 && t1 > t0 ? scale(t0, t1, L + 8, W - R - 8) : () => (L + W - R) / 2;
    add(svg, 'text', { x: 4, y: 14 }, title + ' (' + unit + ')');
    const yAxis = add(svg, 'g', { class: 'axis axis-y' });
    add(yAxis, 'line', { x1: L, x2: L, y1: T, y2: H - B, stroke: '#30363d' });
    for (const v of ticks) {
      add(yAxis, 'line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#21262d' });
      add(yAxis, 'text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, format(v));
    }
    const xAxis = add(svg, 'g', { class: 'axis axis-x' });
    add(xAxis, 'line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#30363d' });
    const shownTimes = checks.length > 1 ? [0, Math.floor((checks.length - 1) / 2), checks.length - 1] : [0];
    for (const i of new Set(shownTimes)) {
      if (!checks[i]) continue;
      const anchor = checks.length === 1 ? 'middle' : i === 0 ? 'start' : i === checks.length - 1 ? 'end' : 'middle';
      add(xAxis, 'text', { x: x(times[i]), y: H - B + 16, 'text-anchor': anchor }, clock(checks[i].at));
    }
    add(xAxis, 'text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-label' }, 'time of check (UTC)');
    add(svg, 'line', { x1: L, x2: W - R, y1: y(slo), y2: y(slo), stroke: '#ff7b72', 'stroke-dasharray': '5 4', class: 'slo-line' });
    add(svg, 'text', { x: W - R - 4, y: y(slo) - 5, 'text-anchor': 'end', class: 'slo-label' }, 'SLO ' + format(slo));
    let path = '';
    let pen = false;
    checks.forEach((k, i) => {
      const v = value(k);
      if (typeof v !== 'number') { pen = false; return; }
      path += (pen ? 'L' : 'M') + x(times[i]).toFixed(1) + ',' + y(v).toFixed(1);
      pen = true;
    });
    if (path) add(svg, 'path', { d: path, fill: 'none', stroke: '#58a6ff', 'stroke-width': 2 });
    checks.forEach((k, i) => {
      const v = value(k);
      const tip = 'check ' + k.check + ' at ' + clock(k.at) + ': p95 ' + ms(k.latency) + ', errors ' + pct(k.errorRate) +
        ', ' + (typeof k.requests === 'number' ? k.requests + ' requests' : 'no request count') + ' → ' + k.verdict + ' (' + k.reasonCode + ')';
      if (typeof v === 'number') {
        const dot = add(svg, 'circle', { cx: x(times[i]), cy: y(v), r: checks.length === 1 ? 6 : 4, class: 'point ' + kindOf(k), 'data-check': k.check });
        add(dot, 'title', {}, tip);
      } else {
        const gap = add(svg, 'rect', { x: x(times[i]) - 3, y: H - B - 10, width: 6, height: 10, fill: '#8b949e', class: 'gap', 'data-check': k.check });
        add(gap, 'title', {}, tip);
      }
    });
    return svg;
  }

  function drawCharts() {
    const d = page.detail;
    if (!d) return;
    const p = d.policy || {};
    const checks = d.checks.slice().sort((a, b) => a.check - b.check);
    $('chart-latency').replaceChildren(chart('p95 latency', 'ms', checks, (k) => k.latency, p.latency_p95_ms || 0, (v) => Math.round(v) + ' ms'));
    $('chart-errors').replaceChildren(chart('error rate', '%', checks, (k) => k.errorRate, p.error_rate || 0, (v) => (v * 100).toFixed(v && v < 0.01 ? 2 : 1) + '%'));
  }

  function drawChecksTable() {
    const d = page.detail;
    const rows = d.page.map((k) => el('tr', { class: kindOf(k) === 'critical' || k.verdict === 'fail' ? 'bad' : '' },
      el('td', { text: k.check }), el('td', { text: clock(k.at) }), el('td', { text: ms(k.latency) }),
      el('td', { text: pct(k.errorRate) }), el('td', { text: typeof k.requests === 'number' ? String(k.requests) : '—' }),
      el('td', {}, el('span', { class: 'chip ' + kindOf(k), role: 'img', 'aria-label': kindOf(k) }), ' ' + k.verdict),
      el('td', { text: k.reasonCode })));
    $('checks-table').tBodies[0].replaceChildren(...rows);
    $('checks-older').disabled = !d.nextFromCheck;
    $('checks-newer').disabled = d.from <= 1;
    $('checks-page').textContent = d.page.length ? 'checks ' + d.page[0].check + '–' + d.page[d.page.length - 1].check : 'no checks yet';
  }

  function drawDetailHead() {
    const d = page.detail;
    const c = page.canaries.get(d.id);
    if (!c) return;
    $('detail-title').textContent = c.model + ': ' + c.from + ' → ' + c.to;
    $('detail-badge').textContent = c.status;
    $('detail-badge').className = 'badge ' + c.status;
    $('detail-line').textContent = d.id + ' · ' + policyLine(c.policy) + (ENDED.includes(c.status) ? ' · ' + endWords(c) : '');
  }

  const fromMath = (m) => ({ check: m.check, at: parseTime(m.evaluatedAt), latency: m.latency_p95_ms, errorRate: m.error_rate, requests: m.requests, verdict: m.verdict, reasonCode: m.reasonCode });

  async function loadChecksPage(from) {
    const d = page.detail;
    const outcome = await call('why_math', { id: d.id, fromCheck: from, limit: 100 });
    if (!outcome.ok || page.detail !== d) return;
    d.from = from;
    d.page = outcome.value.checks.map(fromMath);
    d.nextFromCheck = outcome.value.nextFromCheck;
    d.policy = outcome.value.policy;
    drawChecksTable();
  }

  async function openDetail(id) {
    page.detail = { id, checks: [], page: [], from: 1 };
    $('detail').hidden = false;
    if (!page.canaries.has(id)) await loadStrip({ id });
    drawDetailHead();
    const d = page.detail;
    // The chart holds every check: page through why_math to the end.
    let from = 1;
    while (from && page.detail === d) {
      const outcome = await call('why_math', { id, fromCheck: from, limit: 1000 });
      if (!outcome.ok) { $('detail-line').textContent = outcome.text; return; }
      d.policy = outcome.value.policy;
      for (const m of outcome.value.checks.map(fromMath)) addDetailCheck(m, true);
      from = outcome.value.nextFromCheck;
    }
    drawCharts();
    await loadChecksPage(1);
    const trail = await call('why', { id });
    if (trail.ok && page.detail === d) $('trail').replaceChildren(...trail.value.narrative.map((line) => el('li', { text: line })));
    $('detail').scrollIntoView({ block: 'start' });
  }

  function addDetailCheck(check, quiet) {
    const d = page.detail;
    if (!d.checks.some((k) => k.check === check.check)) d.checks.push(check);
    if (!quiet) drawCharts();
  }

  function route() {
    const m = /^#canary\/([A-Za-z0-9_.:-]+)$/.exec(location.hash);
    if (m) openDetail(m[1]);
    else {
      page.detail = null;
      $('detail').hidden = true;
    }
  }

  /* ---------- jobs and gates ---------- */

  function jobFrom(view) {
    const j = Object.assign(page.jobs.get(view.jobId) || {}, {
      id: view.jobId, task: view.taskId, config: view.configId, status: view.status, progress: view.progress,
      message: view.message, error: view.error, durationMs: view.durationMs, created: parseTime(view.createdAt),
    });
    page.jobs.set(j.id, j);
    return j;
  }

  function drawJobs() {
    const list = Array.from(page.jobs.values()).sort((a, b) => (b.created || 0) - (a.created || 0)).slice(0, JOBS_MAX);
    $('jobs').tBodies[0].replaceChildren(...list.map((j) => {
      const running = j.status === 'queued' || j.status === 'running';
      const bar = el('div', { class: 'bar', role: 'progressbar', 'aria-label': 'progress of ' + j.id, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round((j.progress || 0) * 100) },
        el('div', { style: 'width:' + Math.round((j.status === 'completed' ? 1 : j.progress || 0) * 100) + '%' }));
      return el('tr', { 'data-job': j.id, 'data-status': j.status },
        el('td', {}, el('div', { text: j.task + ' / ' + j.config }), el('code', { class: 'dim', text: j.id }),
          j.error ? el('div', { class: 'message error', text: j.error }) : null),
        el('td', {}, el('span', { class: 'badge ' + j.status, text: j.status })),
        el('td', {}, bar, el('div', { class: 'dim', text: j.message || '' })),
        el('td', { text: j.durationMs ? span(j.durationMs) : '' }),
        el('td', {}, running ? el('button', { type: 'button', 'data-action': 'cancel', text: 'Cancel', onclick: async (ev) => {
          ev.target.disabled = true;
          const outcome = await call('cancel_job', { jobId: j.id, reason: 'cancelled from the cockpit' });
          if (!outcome.ok) j.error = outcome.text;
          else jobFrom(outcome.value);
          drawJobs();
        } }) : null));
    }));
  }

  function onJobEvent(e) {
    const d = e.data;
    const j = page.jobs.get(d.jobId) || { id: d.jobId, task: d.taskId || '', config: d.configId || '', created: parseTime(d.ts) };
    page.jobs.set(j.id, j);
    if (d.taskId) j.task = d.taskId;
    if (d.configId) j.config = d.configId;
    if (d.status) j.status = d.status;
    if (typeof d.progress === 'number') j.progress = d.progress;
    if (d.message) j.message = d.message;
    if (d.error) j.error = d.error;
    if (d.durationMs) j.durationMs = d.durationMs;
    drawJobs();
  }

  function drawGates() {
    const list = Array.from(page.gates.entries()).sort((a, b) => a[0].localeCompare(b[0]));
    $('gates').tBodies[0].replaceChildren(...list.map(([model, g]) => el('tr', { 'data-model': model },
      el('td', { text: model }), el('td', {}, el('span', { class: 'badge', text: g.gate })), el('td', { text: g.since ? clock(g.since) : '' }))));
  }

  /* ---------- the ledger ---------- */

  function severity(e) {
    const d = e.data || {};
    if (['failed', 'rolled_back', 'cancelled'].includes(e.event) || (e.event === 'metric' && d.verdict === 'fail')) return 'bad';
    if (['held', 'paused', 'dry_run'].includes(e.event) || (e.event === 'metric' && d.verdict === 'no_decision')) return 'warn';
    if (['completed', 'promoted', 'resumed'].includes(e.event) || (e.event === 'metric' && d.verdict === 'pass')) return 'ok';
    return '';
  }

  function ledgerVisible(p) {
    const entity = $('ledger-entity').value;
    const level = $('ledger-severity').value;
    if (entity && p.dataset.kind !== entity) return false;
    if (level === 'bad' && p.dataset.severity !== 'bad') return false;
    if (level === 'warn' && !['bad', 'warn'].includes(p.dataset.severity)) return false;
    return true;
  }

  function ledger(e) {
    const seq = Number(e.id);
    if (!e.narrative || seq <= page.lastLedgerSeq) return;
    page.lastLedgerSeq = seq;
    const box = $('ledger');
    const kind = (e.topic || '').split('/')[0];
    const level = severity(e);
    const undecided = e.event === 'metric' && e.data.verdict === 'no_decision';
    const last = page.lastLine.get(e.topic);
    const time = clock(parseTime(e.data.ts));
    const text = time + '  ' + e.narrative.replace(/^\[[^\]]*\]\s*/, '');
    if (undecided && last && last.isConnected && last.dataset.undecided === e.topic + ' ' + e.data.reasonCode) {
      // Repeated undecided checks of one canary (whatever others said meanwhile): one line, with a count,
      // moved to the bottom with the latest of them.
      const count = Number(last.dataset.count) + 1;
      last.dataset.count = count;
      last.querySelector('.text').textContent = text;
      last.querySelector('.count').textContent = '  ×' + count;
      box.appendChild(last);
    } else {
      const p = el('p', { class: level, 'data-kind': kind, 'data-severity': level, 'data-seq': e.id, 'data-count': 1 },
        el('span', { class: 'text', text }), el('span', { class: 'count' }));
      if (undecided) p.dataset.undecided = e.topic + ' ' + e.data.reasonCode;
      p.hidden = !ledgerVisible(p);
      box.appendChild(p);
      page.lastLine.set(e.topic, p);
      if (page.lastLine.size > LEDGER_MAX) page.lastLine.delete(page.lastLine.keys().next().value);
      while (box.childElementCount > LEDGER_MAX) box.firstElementChild.remove();
    }
    if (!$('ledger-pause').checked) box.scrollTop = box.scrollHeight;
  }

  /* ---------- loading and following ---------- */

  async function loadPicture() {
    const [canaries, jobs, gates] = await Promise.all([
      call('list_canaries', { limit: 200 }),
      call('list_jobs', { limit: JOBS_MAX }),
      call('model_gates', {}),
    ]);
    const failed = [canaries, jobs, gates].find((o) => !o.ok);
    if (failed) {
      $('conn').textContent = 'cannot load: ' + failed.text;
      return null;
    }
    page.canaries.clear();
    canaries.value.canaries.forEach(canaryFrom);
    page.jobs.clear();
    jobs.value.jobs.forEach(jobFrom);
    page.gates.clear();
    for (const g of gates.value.models) page.gates.set(g.modelId, { gate: g.gate, since: parseTime(g.updatedAt) });
    page.asOf = { canary: canaries.value.asOf, job: jobs.value.asOf, model: gates.value.asOf };
    // Check strips for the cards that will show (newest first), not for every active canary there is.
    const active = Array.from(page.canaries.values()).filter((c) => ACTIVE.includes(c.status));
    active.sort((a, b) => (b.created || 0) - (a.created || 0));
    await Promise.all(active.slice(0, CARDS_MAX).map(loadStrip));
    drawCanaries();
    drawJobs();
    drawGates();
    return Math.min(page.asOf.canary, page.asOf.job, page.asOf.model);
  }

  function onEvent(e) {
    if (!e.topic) return;
    const kind = e.topic.split('/')[0];
    if (!(Number(e.id) > (page.asOf[kind] ?? -1))) return;
    if (kind === 'canary') onCanaryEvent(e);
    else if (kind === 'job') onJobEvent(e);
    else if (kind === 'model' && e.event === 'gate_changed') {
      page.gates.set(e.topic.slice(6), { gate: e.data.gate, since: parseTime(e.data.ts) });
      drawGates();
    }
  }

  async function connect() {
    if (page.client) page.client.close();
    $('conn').textContent = 'loading…';
    const asOf = await loadPicture();
    if (asOf === null) return;
    const client = new LukhasMCPCockpit(location.origin, page.key || null, { lastEventId: Math.max(0, asOf - LEDGER_BACKLOG) });
    page.client = client;
    let opened = 0;
    client.on('open', async () => {
      $('conn').textContent = 'live';
      $('conn').className = 'live';
      // A reconnect (the server restarted, the network dropped): the picture is loaded again.
      if (opened++ > 0) await loadPicture();
    });
    client.on('error', (e) => {
      $('conn').textContent = e.fatal ? 'stopped: ' + e.message : 'reconnecting…';
      $('conn').className = '';
    });
    client.on('event', (e) => {
      // One event the page cannot show must not stop the ones after it.
      try {
        ledger(e);
        onEvent(e);
      } catch (err) {
        console.error('cockpit: event ' + e.id + ' (' + e.event + '): ' + err.stack);
      }
    });
    ['job/*', 'canary/*', 'model/*', 'ops/*'].forEach((t) => client.subscribe(t));
    route();
  }

  /* ---------- forms and filters ---------- */

  $('keybox').onsubmit = (ev) => {
    ev.preventDefault();
    page.key = $('key').value.trim();
    sessionStorage.setItem('cockpitKey', page.key);
    connect();
  };
  $('key').value = page.key;

  $('evalform').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const outcome = await call('run_eval', { taskId: f.get('taskId'), configId: f.get('configId') });
    say($('eval-message'), outcome, outcome.ok ? 'queued ' + outcome.value.jobId : '');
  };

  $('canaryform').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const policy = { latency_p95_ms: Number(f.get('latency_p95_ms')), error_rate: Number(f.get('error_rate')) };
    for (const name of ['interval', 'window', 'deadline', 'maxStaleness']) if (f.get(name)) policy[name] = f.get(name);
    for (const name of ['successesToPromote', 'failureLimit', 'minRequests', 'warmupChecks', 'maxNoDecision', 'criticalFactor', 'confidence']) {
      if (f.get(name) !== '') policy[name] = Number(f.get(name));
    }
    const outcome = await call('start_canary', {
      modelId: f.get('modelId'), fromGate: f.get('fromGate'), toGate: f.get('toGate'), sloPolicy: policy, dryRun: f.get('dryRun') === 'on',
    });
    let text = outcome.ok ? 'started ' + outcome.value.canaryId : '';
    if (outcome.ok && outcome.value.warnings) text += ' — ' + outcome.value.warnings.join('; ');
    say($('canary-message'), outcome, text);
    if (outcome.ok) {
      canaryFrom(outcome.value);
      drawCanaries();
    }
  };

  $('show').onchange = drawCanaries;
  $('model-filter').onchange = drawCanaries;
  const refilter = () => Array.from($('ledger').children).forEach((p) => { p.hidden = !ledgerVisible(p); });
  $('ledger-entity').onchange = refilter;
  $('ledger-severity').onchange = refilter;
  $('checks-older').onclick = () => page.detail && page.detail.nextFromCheck && loadChecksPage(page.detail.nextFromCheck);
  $('checks-newer').onclick = () => page.detail && loadChecksPage(Math.max(1, page.detail.from - 100));
  window.addEventListener('hashchange', route);
  // Ages and deadlines move on by themselves.
  setInterval(() => { if (page.canaries.size) drawCanaries(); }, 5000);

  connect();
})();
