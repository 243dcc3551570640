// taskpool dashboard.  Plain ES modules, no build step.
//
// Data flow: the page loads the current state over REST (workers, stats,
// kinds, one page of tasks), then follows GET /api/v1/events.  Events are only
// queued when they arrive; flush() applies them once per animation frame in a
// batch (timeline data, table rows, pool cards), so the DOM is touched at most
// ~60 times a second however many tasks per second the pool runs.  A `resync`
// event (the server dropped events for us) refetches everything.

import { api, ApiError, setTokenPrompter } from './js/api.js';
import { EventStream } from './js/events.js';
import { Timeline } from './js/timeline.js';
import { HistoryChart } from './js/chart.js';
import {
  el, chip, setChip, ts, fmtInt, fmtRate, fmtMs, fmtAge, fmtAgo, fmtKb, fmtDateTime,
  signalName, exitLabel, windowLabel, STATUSES, TERMINAL, STATUS_LABEL,
} from './js/util.js';

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 50;
const rank = (s) => (s === 'queued' ? 0 : s === 'running' ? 1 : 2);

/* ------------------------------------------------------------------ token */

setTokenPrompter((rejected) => new Promise((resolve) => {
  const dlg = $('token-dialog');
  const form = $('token-form');
  const input = $('token-input');
  $('token-error').hidden = !rejected;
  input.value = '';
  input.setAttribute('aria-invalid', rejected ? 'true' : 'false');
  const onSubmit = (e) => {
    e.preventDefault();
    const v = input.value.trim();
    if (!v) { input.focus(); return; }
    form.removeEventListener('submit', onSubmit);
    dlg.close();
    resolve(v);
  };
  form.addEventListener('submit', onSubmit);
  if (!dlg.open) dlg.showModal();
  input.focus();
}));
$('token-dialog').addEventListener('cancel', (e) => e.preventDefault());   // nothing works without it

// The sticky header's height, for scroll-padding-top: what is scrolled into
// view is not hidden under it (it wraps to two lines on phones).
new ResizeObserver(([e]) => document.documentElement.style.setProperty('--topbar-h', `${Math.ceil(e.borderBoxSize[0].blockSize)}px`))
  .observe(document.querySelector('.topbar'));

/* ------------------------------------------------------------------ toasts */

function toast(message, kind = 'info', ms = 4000) {
  const t = el('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  $('toasts').append(t);
  setTimeout(() => { t.classList.add('toast-out'); setTimeout(() => t.remove(), 300); }, ms);
}

/* ------------------------------------------------------------------ connection */

let connTimer = null;
function setConn(state, detail) {
  const c = $('conn');
  const label = c.querySelector('.conn-label');
  clearInterval(connTimer);
  if (state === 'open') { c.dataset.state = 'live'; label.textContent = 'Live'; return; }
  if (state === 'connecting') { if (c.dataset.state !== 'retrying') { c.dataset.state = 'connecting'; label.textContent = 'Connecting…'; } return; }
  c.dataset.state = detail.failures > 3 ? 'offline' : 'retrying';
  const until = Date.now() + detail.delay;
  const tick = () => {
    const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    label.textContent = detail.failures > 3 ? `Offline · retry in ${s}s` : `Reconnecting in ${s}s`;
  };
  tick();
  connTimer = setInterval(tick, 500);
}

/* ------------------------------------------------------------------ numbers */

// The timeline is made first: pool and table code read its clock offset.
const timeline = new Timeline($('timeline-canvas'), $('timeline-tip'), $('timeline-live'), { onOpen: (id) => openTaskHash(id) });

const chart = new HistoryChart($('chart'), $('chart-tip'));
chart.onSpan = (sec) => {
  const t = sec >= 120 ? `last ${Math.round(sec / 60)} min` : `last ${sec} s`;
  if ($('chart-span').textContent !== t) $('chart-span').textContent = t;
};
let stats = null;

function buildCounts() {
  const ul = $('counts');
  for (const s of STATUSES) {
    ul.append(el('li', {},
      el('button', {
        type: 'button', class: 'count', dataset: { status: s }, title: `Show ${STATUS_LABEL[s]} tasks`,
        onclick: () => { $('filter-status').value = $('filter-status').value === s ? '' : s; onFilter(); $('tasks').scrollIntoView({ behavior: 'smooth', block: 'start' }); },
      },
      el('i', { class: 'dot', 'aria-hidden': 'true' }),
      el('span', { class: 'count-label' }, STATUS_LABEL[s]),
      el('span', { class: 'count-value', dataset: { count: s } }, '–'))));
  }
}

function renderStats() {
  if (!stats) return;
  const c = stats.counts || {};
  for (const s of STATUSES) {
    const n = document.querySelector(`[data-count="${s}"]`);
    if (n) { n.textContent = fmtInt(c[s] ?? 0); n.parentElement.dataset.zero = String(!c[s]); }
  }
  const total = STATUSES.reduce((a, s) => a + (c[s] || 0), 0);
  const dist = $('dist');
  if (!dist.children.length) for (const s of ['succeeded', 'failed', 'timed_out', 'cancelled', 'running', 'queued']) dist.append(el('span', { dataset: { status: s } }));
  for (const seg of dist.children) {
    const n = c[seg.dataset.status] || 0;
    seg.style.flexGrow = String(n);
    seg.hidden = !n;
  }
  dist.dataset.empty = String(!total);
  $('kpi-rate').textContent = fmtRate(stats.throughput);
  if (stats.throughput_window_s) $('kpi-rate-win').textContent = windowLabel(stats.throughput_window_s);
  if (stats.percentile_window_s) for (const id of ['kpi-run-win', 'kpi-wait-win']) $(id).textContent = windowLabel(stats.percentile_window_s);
  $('kpi-queue').textContent = fmtInt(stats.queue_depth);
  $('kpi-run50').textContent = fmtMs(stats.run_ms?.p50);
  $('kpi-run95').textContent = fmtMs(stats.run_ms?.p95);
  $('kpi-wait50').textContent = fmtMs(stats.queue_ms?.p50);
  $('kpi-wait95').textContent = fmtMs(stats.queue_ms?.p95);
  $('sum-queued').textContent = fmtInt(stats.queue_depth ?? c.queued);
  $('sum-rate').textContent = fmtRate(stats.throughput);
  chart.set(stats.history);
  renderSummary();
}

async function pollStats() {
  try { stats = await api('/api/v1/stats'); renderStats(); } catch { /* shown by the connection badge */ }
  setTimeout(pollStats, document.hidden ? 5000 : 1000);
}

/* ------------------------------------------------------------------ pool */

// The pool shows the live workers.  A retired worker's replacement carries on
// in its card (the server announces the replacement first); a worker that
// dies stays in view, red, for DIED_MS beside its replacement; a card left
// without a successor goes after LEAVE_MS.  At most pool-size cards are
// leaving at once, and recycling is counted in the card's header rather than
// drawn card by card.  Events change the models; cards are drawn from them at
// most every 150 ms (renderPoolSoon), so a worker that lives 40 ms under heavy
// recycling may never get a card of its own.
const workers = new Map();       // pid -> worker view model (live, or leaving while shown)
const running = new Map();       // task id -> {kind, started} of tasks seen starting (bounded)
const gone = new Map();          // pid -> {at: local ms of its exit, started}: a late poll must not revive it
const exits = [];                // {at: local ms, kind: recycled|killed|died}, oldest first
const LEAVE_MS = 1200;
const DIED_MS = 3000;
const REPLACE_MS = 3000;
const EXIT_KIND = { retired: 'recycled', killed: 'killed', died: 'died' };
// A worker finishing 5+ tasks a second counts as busy even between two tasks.
const isBusy = (w) => !w.leaving && (w.state === 'busy' || (w.rate || 0) >= 5);
let poolInfo = null;

function makeCard(w) {
  const li = el('li', { class: 'worker', dataset: { pid: w.pid } },
    el('div', { class: 'w-head' },
      el('span', { class: 'w-dot', 'aria-hidden': 'true' }),
      el('span', { class: 'w-pid mono' }, String(w.pid)),
      el('span', { class: 'w-state badge' })),
    el('div', { class: 'w-task' }),
    el('dl', { class: 'w-stats' },
      el('div', { class: 'w-stat-done' }, el('dt', {}, 'done'), el('dd', { class: 'w-done' })),
      el('div', {}, el('dt', {}, 'age'), el('dd', { class: 'w-age' })),
      el('div', {}, el('dt', {}, 'memory'), el('dd', { class: 'w-rss' }))));
  w.el = li;
  return li;
}

function updateCard(w) {
  const li = w.el;
  if (!li) return;
  const now = Date.now();
  // A worker running hundreds of tiny tasks a second flips between idle and
  // busy faster than anyone can read: show its rate instead.
  const fast = !w.leaving && (w.rate || 0) >= 5;
  const long = w.task_id && w.taskStarted && now - w.taskStarted > 400;
  const state = w.leaving ? (w.died ? 'died' : 'exited') : isBusy(w) ? 'busy' : 'idle';
  if (li.dataset.state !== state) li.dataset.state = state;
  const badge = li.querySelector('.w-state');
  if (badge.textContent !== state) badge.textContent = state;
  const task = li.querySelector('.w-task');
  const key = w.leaving ? `x${w.exitLabel}` : fast && !long ? 'rate' : w.task_id ? `t${w.task_id}:${w.taskKind || ''}` : 'idle';
  if (task.dataset.key !== key) {
    task.dataset.key = key;
    if (w.leaving) task.replaceChildren(el('span', { class: 'w-exit' }, w.exitLabel));
    else if (key === 'rate') task.replaceChildren(el('span', { class: 'w-rate' }), el('span', { class: 'muted' }, 'tasks/s'));
    else if (w.task_id) {
      task.replaceChildren(
        el('a', { href: `#/tasks/${w.task_id}`, class: 'mono w-link' }, `#${w.task_id}`),
        el('span', { class: 'w-kind' }, w.taskKind || ''),
        el('span', { class: 'w-elapsed' }));
    } else task.replaceChildren(el('span', { class: 'muted' }, 'waiting for work'));
  }
  const set = (sel, v) => { const n = li.querySelector(sel); if (n && n.textContent !== v) n.textContent = v; };
  set('.w-pid', String(w.pid));
  set('.w-rate', fmtInt(Math.round(w.rate)));
  set('.w-elapsed', w.taskStarted ? fmtMs(Math.max(0, now - w.taskStarted)) : '');
  set('.w-done', fmtInt(w.tasks_done));
  set('.w-age', w.started_at ? fmtAge((now + timeline.offset - w.started_at) / 1000) : '–');
  set('.w-rss', fmtKb(w.rss_kb));
}

// A worker seen in an event or a poll is a later process than one that
// exited under the same pid only if it started after that one did (pids
// come back once the system has gone round them).
function laterProcess(o, started) {
  const st = ts(o.started_at);
  return st !== null && started !== null && started !== undefined && st > started;
}

function upsertWorker(o, animate) {
  let w = workers.get(o.pid);
  if (w && w.leaving && laterProcess(o, w.started_at)) {
    dropCard(w);                                  // its pid is another worker's now
    w = null;
  }
  const fresh = !w;
  if (fresh) {
    const g = gone.get(o.pid);
    if (g && !laterProcess(o, g.started)) return null;   // a poll older than its exit event
    gone.delete(o.pid);
    w = { pid: o.pid, state: 'idle', task_id: null, tasks_done: 0, started_at: null, rss_kb: null };
    workers.set(o.pid, w);
  }
  if (w.leaving) return w;
  if (o.state) w.state = o.state;
  if (o.task_id !== undefined) {
    if (o.task_id !== w.task_id) {
      const r = running.get(o.task_id);
      w.taskKind = r ? r.kind : null;
      w.taskStarted = r ? r.started : null;
    }
    w.task_id = o.task_id;
  }
  if (o.tasks_done !== undefined && o.tasks_done !== null) w.tasks_done = o.tasks_done;
  if (o.started_at) w.started_at = ts(o.started_at);
  if (o.rss_kb !== undefined && o.rss_kb !== null) w.rss_kb = o.rss_kb;
  if (fresh) w.animate = animate;
  renderPoolSoon();
  return w;
}

// A worker's first card: the card of one that left without successor
// (planned exit), a new one beside a dead worker's card, or at the end.
function placeCard(w) {
  const pred = nearest([...workers.values()].filter((x) => x.leaving && !x.heir && x.el), (x) => x.exitedAt, w.started_at);
  if (pred) { pred.heir = w.pid; w.took = pred.pid; }
  if (pred && !pred.died) { takeCard(w, pred); return; }
  const li = makeCard(w);
  if (w.animate) {
    li.classList.add('arriving');
    li.addEventListener('animationend', () => li.classList.remove('arriving'), { once: true });
  }
  if (pred) pred.el.after(li);
  else $('workers').append(li);
}

// heir carries on in w's card (w is gone).
function takeCard(heir, w) {
  inherit(heir, w);
  if (heir.el) w.el.replaceWith(heir.el);
  else {
    heir.el = w.el;
    heir.el.dataset.pid = String(heir.pid);
    heir.el.classList.remove('leaving', 'arriving');
    heir.el.querySelector('.w-task').dataset.key = '';
  }
  w.el = null;
  dropCard(w);
}

// The element of list whose time(x) is nearest to t, within REPLACE_MS.
function nearest(list, time, t) {
  let best = null, bestD = REPLACE_MS;
  for (const x of list) {
    const d = Math.abs(time(x) - (t ?? Date.now() + timeline.offset));
    if (d <= bestD) { best = x; bestD = d; }
  }
  return best;
}

// A card that takes another's place carries on its rate: under recycling
// that is the rate of the slot, and no single worker lives a second.
function inherit(heir, w) {
  heir.rate = w.rate;
  heir.evDone = (heir.evDone || 0) + (w.evDone || 0) - (w.evPrev || 0);
}

function dropCard(w) {
  clearTimeout(w.leaveTimer);
  if (w.el) w.el.remove();
  if (workers.get(w.pid) === w) workers.delete(w.pid);
}

let poolTimer = null;
function renderPoolSoon() {
  if (poolTimer) return;
  poolTimer = setTimeout(renderPool, 150);
}

function renderPool() {
  clearTimeout(poolTimer);
  poolTimer = null;
  for (const w of [...workers.values()]) {
    if (!w.el && !w.leaving) placeCard(w);
    updateCard(w);
  }
  renderSummary();
}

// A worker left.  at: server ms of the exit.
function removeWorker(pid, label, { died = false, at = Date.now() + timeline.offset, started = null } = {}) {
  const w = workers.get(pid);
  gone.set(pid, { at: Date.now(), started: w && w.started_at !== null ? w.started_at : started });
  if (!w || w.leaving) return;
  w.leaving = true;
  w.exitLabel = label;
  w.died = died;
  w.exitedAt = at;
  const heir = died ? null : nearest([...workers.values()].filter((x) => !x.leaving && !x.took && x !== w && (x.started_at ?? 0) >= (w.started_at ?? 0)), (x) => x.started_at ?? 0, at);
  if (heir && w.el) {                            // retired: its replacement is already there
    heir.took = pid;
    takeCard(heir, w);
    renderPoolSoon();
    return;
  }
  if (!w.el) {                                   // left before it was ever drawn
    if (heir) { heir.took = pid; inherit(heir, w); }
    dropCard(w);
    renderPoolSoon();
    return;
  }
  updateCard(w);
  w.el.classList.add('leaving');
  w.leaveTimer = setTimeout(() => { dropCard(w); renderPoolSoon(); }, died ? DIED_MS : LEAVE_MS);
  const leaving = [...workers.values()].filter((x) => x.leaving);
  const cap = Math.max(1, poolInfo ? poolInfo.size : 2);
  for (const x of leaving.slice(0, Math.max(0, leaving.length - cap))) dropCard(x);
  renderPoolSoon();
}

function recordExit(reason, atLocal) {
  const kind = EXIT_KIND[reason];
  if (kind) exits.push({ at: atLocal, kind });
}

// GET /api/v1/workers.  A worker missing from two answers in a row has left
// (its exit event may simply not be here yet after one); `now` (after a
// resync, when events may have been lost) removes it at once.
let missing = new Set();
async function loadWorkers(animate, now = false) {
  const data = await api('/api/v1/workers');
  poolInfo = data.pool || null;
  if (poolInfo && poolInfo.size !== timeline.poolSize) { timeline.poolSize = poolInfo.size; timeline.rowsDirty = true; }
  const seen = new Set();
  for (const o of data.workers || []) { seen.add(o.pid); upsertWorker(o, animate); }
  const miss = new Set();
  for (const w of workers.values()) {
    if (w.leaving || seen.has(w.pid)) continue;
    if (now || missing.has(w.pid)) { removeWorker(w.pid, 'exited'); timeline.workerExited(w.pid, timeline.now(), null, 'exited'); } else miss.add(w.pid);
  }
  missing = miss;
  timeline.setWorkers(data.workers || []);
  const cut = Date.now() - 120000;
  for (const [pid, g] of gone) if (g.at < cut) gone.delete(pid);
  renderPoolSoon();
}

async function pollWorkers() {
  try { await loadWorkers(true); } catch { /* retried */ }
  setTimeout(pollWorkers, document.hidden ? 10000 : 3000);
}

// A new worker's memory is only in GET /api/v1/workers: ask soon, not at
// the next poll (at most once a second however fast the pool recycles).
let rssTimer = null, rssAt = 0;
function workersSoon() {
  if (rssTimer) return;
  rssTimer = setTimeout(() => { rssTimer = null; rssAt = Date.now(); loadWorkers(true).catch(() => {}); },
    Math.max(300, 1000 - (Date.now() - rssAt)));
}

function renderSummary() {
  const live = [...workers.values()].filter((w) => !w.leaving);
  const busy = live.filter(isBusy).length;
  $('sum-workers').textContent = String(live.length);
  $('sum-busy').textContent = String(busy);
  $('workers-empty').hidden = live.length > 0;
  const parts = [`${live.length} process${live.length === 1 ? '' : 'es'}`, `${busy} busy`];
  if (poolInfo && poolInfo.max_tasks_per_worker) parts.push(`recycled every ${fmtInt(poolInfo.max_tasks_per_worker)} tasks`);
  const cut = Date.now() - 60000;
  while (exits.length && exits[0].at < cut) exits.shift();
  const n = { recycled: 0, killed: 0, died: 0 };
  for (const x of exits) n[x.kind]++;
  const sub = $('pool-sub');
  const churn = Object.keys(n).filter((k) => n[k]).map((k) => el('span', { class: `churn-${k}` }, `${fmtInt(n[k])} ${k}`));
  const nodes = [parts.join(' · ')];
  if (churn.length) {
    nodes.push(' · ');
    churn.forEach((c, i) => nodes.push(...(i ? [', ', c] : [c])));
    nodes.push(' in the last minute');
  }
  const text = nodes.map((x) => (typeof x === 'string' ? x : x.textContent)).join('');
  if (sub.dataset.text !== text) { sub.dataset.text = text; sub.replaceChildren(...nodes); }
  for (const k of Object.keys(n)) sub.dataset[k] = String(n[k]);
}

/* ------------------------------------------------------------------ timeline */

function setWindow(ms) {
  let found = false;
  for (const o of $('tl-window').querySelectorAll('button')) {
    const on = Number(o.dataset.window) === ms;
    found ||= on;
    o.setAttribute('aria-pressed', String(on));
  }
  if (!found) return;
  timeline.setWindow(ms);
  try { localStorage.setItem('taskpool.window', String(ms)); } catch { /* ignore */ }
}
for (const b of $('tl-window').querySelectorAll('button')) b.addEventListener('click', () => setWindow(Number(b.dataset.window)));
try { setWindow(Number(localStorage.getItem('taskpool.window')) || 120000); } catch { /* ignore */ }

// The pool and its timeline from the server: GET /api/v1/workers for the
// cards, GET /api/v1/timeline for the chart's five minutes of history (the
// running task of each worker, how each one that left did).  On load and
// after a resync, so no bar stays open that the server does not show running.
const KEEP_S = 300;
async function loadPool(animate, now = false) {
  timeline.beginSeed();
  const t0 = Date.now();
  let snap;
  try {
    [snap] = await Promise.all([api(`/api/v1/timeline?seconds=${KEEP_S}`), loadWorkers(animate, now)]);
  } catch (e) {
    timeline.abortSeed();
    throw e;
  }
  timeline.load(snap, snap.now - (t0 + Date.now()) / 2);
  for (const sw of snap.workers || []) {
    const w = workers.get(sw.pid);
    if (!w || w.leaving || !sw.task || (w.task_id && w.task_id !== sw.task.id)) continue;
    w.task_id = sw.task.id; w.taskKind = sw.task.kind; w.taskStarted = sw.task.started_at - timeline.offset; w.state = 'busy';
  }
  // The answer's exits up to its time, then those seen since (events after it).
  const answered = snap.now - timeline.offset;
  const since = exits.filter((x) => x.at > answered);
  exits.length = 0;
  for (const sw of (snap.workers || []).filter((x) => x.exited_at !== null).sort((a, b) => a.exited_at - b.exited_at)) recordExit(sw.reason, sw.exited_at - timeline.offset);
  exits.push(...since);
  renderPool();
}

/* ------------------------------------------------------------------ tasks table */

const table = {
  status: '', kind: '', before: null, stack: [], next: null, idCursor: true,
  rows: [],              // task objects, newest first
  focusId: null,         // the row that is the table's Tab stop
  byId: new Map(),       // id -> {t, tr, dirty}
  loading: false, seq: 0,
  loadingBefore: null,   // the page being loaded
  held: new Map(),       // events that arrived while the newest page loaded
};

function listUrl(before, limit = PAGE_SIZE) {
  const q = new URLSearchParams();
  if (table.status) q.set('status', table.status);
  if (table.kind) q.set('kind', table.kind);
  q.set('limit', String(limit));
  if (before !== null && before !== undefined) q.set('before', String(before));
  return `/api/v1/tasks?${q}`;
}

async function loadPage(before) {
  const seq = ++table.seq;
  table.loading = true;
  table.loadingBefore = before;
  table.held.clear();
  $('task-table').setAttribute('aria-busy', 'true');
  try {
    const data = await api(listUrl(before));
    if (seq !== table.seq) return;
    table.before = before;
    table.next = data.next ?? null;
    const tasks = data.tasks || [];
    table.idCursor = table.next === null || (tasks.length > 0 && String(table.next) === String(tasks[tasks.length - 1].id));
    const old = table.byId;
    table.byId = new Map();
    table.rows = [];
    for (const t of tasks) {
      const prev = old.get(t.id);
      const row = { t: prev && !isNewer(prev.t, t) ? prev.t : t, tr: prev ? prev.tr : null, dirty: true };
      table.byId.set(t.id, row);
      table.rows.push(row.t);
    }
    table.loading = false;
    for (const t of table.held.values()) tableUpsert(t, false);
    table.held.clear();
    renderTable(false);
  } catch (e) {
    if (seq === table.seq) toast(`Could not load tasks: ${e.message}`, 'error');
  } finally {
    if (seq === table.seq) { table.loading = false; $('task-table').removeAttribute('aria-busy'); }
  }
}

// Is b at least as far along as a?  (For state from REST, which can be older
// than what the event stream already told us.)
function isNewer(a, b) {
  if ((b.attempts ?? 0) !== (a.attempts ?? 0)) return (b.attempts ?? 0) > (a.attempts ?? 0);
  return rank(b.status) >= rank(a.status);
}

function matchesFilter(t) {
  return (!table.status || t.status === table.status) && (!table.kind || t.kind === table.kind);
}

// A task changed (event, submit response, cancel response).  fromStream:
// events are ordered and authoritative; other sources must not go backwards.
function tableUpsert(t, fromStream) {
  if (table.loading) {                                  // the page is being replaced
    if (table.loadingBefore === null) table.held.set(t.id, { ...(table.held.get(t.id) || {}), ...t });
    return;
  }
  const row = table.byId.get(t.id);
  if (row) {
    if (!fromStream && !isNewer(row.t, t)) return;
    Object.assign(row.t, t);
    row.dirty = true;
    return;
  }
  if (table.before !== null) return;                    // live rows on the newest page only
  if (!matchesFilter(t)) return;
  const rows = table.rows;
  if (rows.length >= PAGE_SIZE && t.id < rows[rows.length - 1].id) return;
  let i = 0;
  while (i < rows.length && rows[i].id > t.id) i++;
  const copy = { ...t };
  rows.splice(i, 0, copy);
  table.byId.set(t.id, { t: copy, tr: null, dirty: true, fresh: true });
  while (rows.length > PAGE_SIZE) {
    const gone = rows.pop();
    table.byId.delete(gone.id);
    if (table.idCursor) table.next = rows[rows.length - 1].id;
    else table.stale = true;
  }
}

function rowCells(t) {
  const now = Date.now();
  const created = ts(t.created_at);
  const started = ts(t.started_at);
  const runMs = t.run_ms ?? (t.status === 'running' && started ? Math.max(0, now + timeline.offset - started) : null);
  return {
    worker: t.worker_pid ? String(t.worker_pid) : '–',
    prio: String(t.priority ?? 0),
    att: `${t.attempts ?? 0}/${t.max_attempts ?? 1}`,
    created: fmtAgo(created, now + timeline.offset),
    createdTitle: created ? fmtDateTime(created) : '',
    wait: fmtMs(t.queue_ms),
    run: t.status === 'running' && t.run_ms === null && runMs !== null ? `${fmtMs(runMs)}…` : fmtMs(runMs),
    info: t.error ? t.error.message || t.error.code : '',
  };
}

function makeRow(t) {
  const tr = el('tr', { tabindex: '-1', dataset: { id: t.id } },
    el('td', { class: 'c-id' }, el('a', { href: `#/tasks/${t.id}`, class: 'mono', tabindex: '-1' }, `#${t.id}`)),
    el('td', { class: 'c-kind' }, el('span', { class: 'kind' }, t.kind)),
    el('td', { class: 'c-status' }, chip(t.status)),
    el('td', { class: 'c-worker mono' }),
    el('td', { class: 'c-prio mono' }),
    el('td', { class: 'c-att mono' }),
    el('td', { class: 'c-created' }),
    el('td', { class: 'c-num c-wait mono' }),
    el('td', { class: 'c-num c-run mono' }),
    el('td', { class: 'c-info' }));
  return tr;
}

function fillRow(tr, t) {
  const c = rowCells(t);
  if (tr.dataset.status !== t.status) tr.dataset.status = t.status;
  setChip(tr.children[2].firstChild, t.status);
  const set = (i, v) => { if (tr.children[i].textContent !== v) tr.children[i].textContent = v; };
  set(3, c.worker); set(4, c.prio); set(5, c.att); set(6, c.created); set(7, c.wait); set(8, c.run); set(9, c.info);
  tr.children[6].title = c.createdTitle;
  tr.children[9].title = c.info;
}

// Table DOM updates are batched: at most one every TABLE_MS however many
// events arrive (a status change shows within a fifth of a second), and one a
// second while rows are replaced faster than anyone reads them (a flood of
// tasks would otherwise rebuild the page's largest element five times a second).
const TABLE_MS = 200;
const FLOOD_MS = 1000;
let tableTimer = null;
let tableAt = 0;
let tableGap = TABLE_MS;
function renderTableSoon() {
  if (tableTimer) return;
  const wait = Math.max(0, tableGap - (performance.now() - tableAt));
  tableTimer = setTimeout(() => { tableTimer = null; renderTable(); }, wait);
}

function renderTable(animate = true) {
  tableAt = performance.now();
  if (tableTimer) { clearTimeout(tableTimer); tableTimer = null; }
  const tbody = $('task-rows');
  let fresh = 0;
  for (const t of table.rows) { const r = table.byId.get(t.id); if (!r.tr) fresh++; }
  tableGap = fresh > 12 && table.before === null ? FLOOD_MS : TABLE_MS;
  if (fresh > 12) animate = false;                      // a flood: no flashing
  const want = [];
  for (const t of table.rows) {
    const row = table.byId.get(t.id);
    if (!row.tr) {
      row.tr = makeRow(t);
      if (row.fresh && animate) {
        row.tr.classList.add('row-new');
        row.tr.addEventListener('animationend', () => row.tr.classList.remove('row-new'), { once: true });
      }
      row.dirty = true;
    }
    if (row.dirty) { fillRow(row.tr, row.t); row.dirty = false; }
    row.fresh = false;
    want.push(row.tr);
  }
  // reconcile DOM order with the fewest moves; a focused row that leaves
  // hands the focus to the row now at its place
  const keep = new Set(want);
  const focused = tbody.contains(document.activeElement) ? [...tbody.children].indexOf(document.activeElement.closest('tr')) : -1;
  let lostFocus = false;
  for (const tr of [...tbody.children]) if (!keep.has(tr)) { lostFocus ||= tr.contains(document.activeElement); tr.remove(); }
  let cur = tbody.firstChild;
  for (const tr of want) {
    if (cur === tr) { cur = cur.nextSibling; continue; }
    tbody.insertBefore(tr, cur);
  }
  roving();
  if (lostFocus && want.length) want[Math.min(focused, want.length - 1)].focus({ preventScroll: true });
  $('tasks-empty').hidden = want.length > 0;
  renderPager();
}

// The table is one Tab stop: the row last focused (else the first) has
// tabindex 0, the others -1; arrow keys move between rows.
function roving() {
  const trs = $('task-rows').children;
  let stop = null;
  for (const tr of trs) if (Number(tr.dataset.id) === table.focusId) stop = tr;
  stop ||= trs[0];
  for (const tr of trs) {
    const v = tr === stop ? '0' : '-1';
    if (tr.getAttribute('tabindex') !== v) tr.setAttribute('tabindex', v);
  }
}

function renderPager() {
  const live = table.before === null;
  $('page-newest').disabled = live;
  $('page-newer').disabled = live;
  $('page-older').disabled = table.next === null;
  const page = table.stack.length + 1;
  $('page-info').textContent = table.rows.length
    ? `page ${page} · #${table.rows[0].id} – #${table.rows[table.rows.length - 1].id}`
    : `page ${page}`;
  const badge = $('live-badge');
  badge.dataset.live = String(live);
  badge.textContent = live ? 'live' : 'paused on older page';
}

async function gotoOlder() {
  if (table.next === null) return;
  let next = table.next;
  if (table.before === null && table.stale) {           // opaque cursor + trimmed live rows
    const fresh = await api(listUrl(null));
    next = fresh.next;
    if (next === null || next === undefined) return;
  }
  table.stack.push(table.before);
  table.stale = false;
  await loadPage(next);
}

// The filters live in the query string, so that a filtered table can be
// bookmarked, shared and reloaded; replaceState keeps Back for leaving the page.
function filtersFromUrl() {
  const q = new URLSearchParams(location.search);
  const st = $('filter-status');
  const status = q.get('status') ?? '';
  if ([...st.options].some((o) => o.value === status)) st.value = status;
  const kind = q.get('kind') ?? '';
  const kf = $('filter-kind');
  // Kinds arrive later from /api/v1/kinds; loadKinds does not add this one twice.
  if (kind && !kf.querySelector(`option[value="${CSS.escape(kind)}"]`)) kf.append(el('option', { value: kind }, kind));
  kf.value = kind;
  applyFilters();
}

function filtersToUrl() {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of [['status', table.status], ['kind', table.kind]]) {
    if (v) q.set(k, v); else q.delete(k);
  }
  const search = q.toString() ? `?${q}` : '';
  if (search !== location.search) history.replaceState(history.state, '', location.pathname + search + location.hash);
}

function applyFilters() {
  table.status = $('filter-status').value;
  table.kind = $('filter-kind').value;
  table.stack = [];
  table.stale = false;
  for (const b of document.querySelectorAll('#counts .count')) b.setAttribute('aria-pressed', String(b.dataset.status === table.status));
}

function onFilter() {
  applyFilters();
  filtersToUrl();
  loadPage(null);
}

$('filter-status').addEventListener('change', onFilter);
$('filter-kind').addEventListener('change', onFilter);
$('page-newest').addEventListener('click', () => { table.stack = []; table.stale = false; loadPage(null); });
$('page-newer').addEventListener('click', () => { if (!table.stack.length) return; loadPage(table.stack.pop()); });
$('page-older').addEventListener('click', () => gotoOlder());

const tbody = $('task-rows');
tbody.addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-id]');
  if (!tr || e.target.closest('a')) return;
  openTaskHash(Number(tr.dataset.id));
});
tbody.addEventListener('focusin', (e) => {
  const tr = e.target.closest('tr[data-id]');
  if (tr) { table.focusId = Number(tr.dataset.id); roving(); }
});
tbody.addEventListener('keydown', (e) => {
  const tr = e.target.closest('tr[data-id]');
  if (!tr || e.target !== tr) return;
  if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openTaskHash(Number(tr.dataset.id)); return; }
  const trs = [...tbody.children];
  const i = trs.indexOf(tr);
  const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: trs.length - 1, PageDown: i + 10, PageUp: i - 10 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  trs[Math.max(0, Math.min(trs.length - 1, to))].focus();
});

/* ------------------------------------------------------------------ detail */

const detail = { id: null, task: null, seq: 0, refetch: null, opener: null, fromTable: false };
const dlg = $('task-dialog');

function openTaskHash(id) {
  const h = `#/tasks/${id}`;
  if (location.hash === h) openTask(id);
  else location.hash = h;
}

function routeHash() {
  const m = location.hash.match(/^#\/tasks\/(\d+)$/);
  if (m) openTask(Number(m[1]));
  else if (dlg.open) dlg.close();
}
window.addEventListener('hashchange', routeHash);

async function openTask(id) {
  if (detail.id !== id) { detail.task = null; }
  detail.id = id;
  $('detail-title').textContent = `Task #${id}`;
  $('detail-error').hidden = true;
  if (!dlg.open) {
    detail.opener = document.activeElement;
    detail.fromTable = Boolean(detail.opener && detail.opener.closest && detail.opener.closest('#task-rows'));
    dlg.showModal();
    $('detail-close').focus();
  }
  if (!detail.task) {
    $('detail-status').hidden = true;
    $('detail-cancel').hidden = true;
    $('detail-rerun').hidden = true;
    $('detail-body').replaceChildren(el('p', { class: 'muted loading' }, 'Loading…'));
  }
  await fetchDetail();
}

async function fetchDetail() {
  const id = detail.id;
  const seq = ++detail.seq;
  try {
    const t = await api(`/api/v1/tasks/${id}`);
    if (seq !== detail.seq || detail.id !== id) return;
    if (detail.task && !isNewer(detail.task, t)) return;
    detail.task = t;
    renderDetail();
  } catch (e) {
    if (detail.id !== id) return;
    if (e instanceof ApiError && e.status === 404) {
      $('detail-body').replaceChildren(el('p', { class: 'muted' }, `There is no task #${id}.`));
    } else showDetailError(e.message);
  }
}

function showDetailError(msg) {
  const p = $('detail-error');
  p.textContent = msg;
  p.hidden = false;
}

dlg.addEventListener('close', () => {
  // 'close' is queued after close(): if the dialog was opened again meanwhile
  // (Enter on another row), this event is stale and must not wipe the new task.
  if (dlg.open) return;
  const closed = detail.id;
  detail.id = null;
  detail.task = null;
  // Only the closed task's address goes, and focus goes back only if nothing
  // else took it meanwhile: a link to another task, or a click elsewhere,
  // may have come between close() and this event.
  if (location.hash === `#/tasks/${closed}`) history.replaceState(null, '', location.pathname + location.search);
  const a = document.activeElement;
  if (a && a !== document.body && !dlg.contains(a)) return;
  if (detail.opener && document.contains(detail.opener)) detail.opener.focus();
  else if (detail.fromTable) $('task-rows').querySelector('tr[tabindex="0"]')?.focus();
});
dlg.addEventListener('click', (e) => { if (e.target === dlg) dlg.close(); });   // backdrop
$('detail-close').addEventListener('click', () => dlg.close());

$('detail-cancel').addEventListener('click', async () => {
  const id = detail.id;
  const btn = $('detail-cancel');
  btn.disabled = true;
  btn.textContent = 'Cancelling…';
  $('detail-error').hidden = true;
  try {
    const t = await api(`/api/v1/tasks/${id}/cancel`, { method: 'POST' });
    if (detail.id === id) { detail.task = t; renderDetail(); }
    tableUpsert(t, false);
    renderTable();
    toast(`Task #${id} cancelled`);
  } catch (e) {
    if (detail.id === id) showDetailError(e.code === 'task_terminal' ? `Too late: ${e.message}` : e.message);
    fetchDetail();
  } finally {
    btn.disabled = false;
    btn.textContent = 'Cancel task';
  }
});

// A copy of the task, as a new one (the API has no retry of a finished task).
$('detail-rerun').addEventListener('click', async () => {
  const t = detail.task;
  const btn = $('detail-rerun');
  btn.disabled = true;
  $('detail-error').hidden = true;
  try {
    const body = { kind: t.kind, args: t.args, priority: t.priority ?? 0, max_attempts: t.max_attempts ?? 1 };
    if (t.timeout_ms) body.timeout_ms = t.timeout_ms;
    const copy = await api('/api/v1/tasks', { method: 'POST', body });
    tableUpsert(copy, false);
    renderTable();
    toast(`Task #${copy.id} submitted, a copy of #${t.id}`);
    openTaskHash(copy.id);
  } catch (e) {
    if (detail.task === t) showDetailError(e.message);
  } finally {
    btn.disabled = false;
  }
});

// Called for every task event: keeps an open detail view live.
function detailEvent(t) {
  if (detail.id !== t.id) return;
  const had = detail.task;
  if (had) {
    Object.assign(had, t);            // events carry everything but args/result
    renderDetail();
  }
  if (TERMINAL.has(t.status) || !had) {
    clearTimeout(detail.refetch);
    detail.refetch = setTimeout(fetchDetail, 60);   // result, usage
  }
}

function kv(label, value, cls) {
  return el('div', { class: 'kv' }, el('dt', {}, label), el('dd', { class: cls || '' }, value ?? '–'));
}

function pre(text, cls = '') {
  return el('pre', { class: `code ${cls}`, tabindex: '0' }, text);
}

function json(v) { return JSON.stringify(v, null, 2); }

function renderDetail() {
  const t = detail.task;
  if (!t) return;
  const st = $('detail-status');
  st.hidden = false;
  setChip(st, t.status);
  $('detail-title').replaceChildren(`Task `, el('span', { class: 'mono' }, `#${t.id}`), el('span', { class: 'detail-kind' }, t.kind));
  $('detail-cancel').hidden = !(t.status === 'queued' || t.status === 'running');
  $('detail-rerun').hidden = !TERMINAL.has(t.status) || t.args === undefined;

  const created = ts(t.created_at), started = ts(t.started_at), finished = ts(t.finished_at);
  const now = Date.now() + timeline.offset;
  const runLive = t.run_ms ?? (started && !finished ? now - started : null);
  const waitLive = t.queue_ms ?? (!started && created && t.status === 'queued' ? now - created : null);

  // lifecycle strip: queued -> running -> outcome
  const total = Math.max(1, (waitLive || 0) + (runLive || 0));
  const life = el('div', { class: 'life', dataset: { status: t.status } },
    el('div', { class: 'life-bar' },
      el('span', { class: 'life-wait', style: `flex-grow:${Math.max(0.02, (waitLive || 0) / total)}` }),
      runLive !== null ? el('span', { class: 'life-run', dataset: { status: t.status }, style: `flex-grow:${Math.max(0.02, runLive / total)}` }) : null),
    el('div', { class: 'life-legend' },
      el('span', {}, `waited ${fmtMs(waitLive)}`),
      el('span', {}, runLive !== null ? `${TERMINAL.has(t.status) ? 'ran' : 'running for'} ${fmtMs(runLive)}` : 'not started')));

  const sections = [life];
  if (t.error) {
    sections.push(el('div', { class: 'callout', dataset: { status: t.status } },
      el('span', { class: 'callout-code mono' }, t.error.code),
      el('span', { class: 'callout-msg' }, t.error.message)));
  }
  sections.push(el('div', { class: 'detail-grid' },
    el('section', {}, el('h3', {}, 'Timings'), el('dl', { class: 'kvs' },
      kv('created', created ? fmtDateTime(created) : '–', 'mono'),
      kv('started', started ? fmtDateTime(started) : '–', 'mono'),
      kv('finished', finished ? fmtDateTime(finished) : '–', 'mono'),
      kv('queue wait', fmtMs(t.queue_ms), 'mono'),
      kv('run time', fmtMs(t.run_ms), 'mono'),
      kv('timeout', t.timeout_ms ? fmtMs(t.timeout_ms) : 'none', 'mono'))),
    el('section', {}, el('h3', {}, 'Execution'), el('dl', { class: 'kvs' },
      kv('kind', t.kind),
      kv('priority', String(t.priority ?? 0), 'mono'),
      kv('attempts', `${t.attempts ?? 0} of ${t.max_attempts ?? 1}`),
      kv('worker pid', t.worker_pid ? String(t.worker_pid) : '–', 'mono'),
      kv('worker ppid', t.worker_ppid ? String(t.worker_ppid) : '–', 'mono'))),
    el('section', {}, el('h3', {}, 'Resources'), el('dl', { class: 'kvs' },
      kv('user cpu', t.usage ? fmtMs(t.usage.user_ms) : '–', 'mono'),
      kv('system cpu', t.usage ? fmtMs(t.usage.sys_ms) : '–', 'mono'),
      kv('max rss', t.usage ? fmtKb(t.usage.max_rss_kb) : '–', 'mono')))));

  if (t.args !== undefined) sections.push(el('section', {}, el('h3', {}, 'Args'), pre(json(t.args))));
  const r = t.result;
  if (t.kind === 'exec' && r && typeof r === 'object' && ('stdout' in r || 'stderr' in r)) {
    sections.push(el('section', {}, el('h3', {}, 'Command'),
      el('dl', { class: 'kvs kvs-inline' },
        kv('exit code', r.exit_code ?? '–', 'mono'),
        kv('signal', r.signal ? `${r.signal} (${signalName(r.signal)})` : '–', 'mono'),
        kv('truncated', r.truncated ? 'yes' : 'no'))));
    sections.push(el('section', {}, el('h3', {}, 'stdout'), pre(r.stdout || '', r.stdout ? 'term' : 'term empty')));
    sections.push(el('section', {}, el('h3', {}, 'stderr'), pre(r.stderr || '', r.stderr ? 'term term-err' : 'term empty')));
  } else if (t.result !== undefined && t.result !== null) {
    sections.push(el('section', {}, el('h3', {}, 'Result'), pre(json(r))));
  } else if (!TERMINAL.has(t.status)) {
    sections.push(el('section', {}, el('h3', {}, 'Result'), el('p', { class: 'muted' }, 'Not finished yet.')));
  }
  // keep the scroll position while re-rendering a live task
  const body = $('detail-body');
  const scroll = body.scrollTop;
  body.replaceChildren(...sections);
  body.scrollTop = scroll;
}

/* ------------------------------------------------------------------ submit */

let kinds = [];
const drafts = new Map();        // kind -> edited args text
const form = $('submit-form');
const FIELDS = ['kind', 'args', 'priority', 'timeout_ms', 'max_attempts', 'count'];
const fieldInput = { kind: 'f-kind', args: 'f-args', priority: 'f-priority', timeout_ms: 'f-timeout', max_attempts: 'f-attempts', count: 'f-count' };

async function loadKinds() {
  const data = await api('/api/v1/kinds');
  kinds = data.kinds || [];
  const sel = $('f-kind');
  const filt = $('filter-kind');
  sel.replaceChildren();
  for (const k of kinds) {
    sel.append(el('option', { value: k.name, disabled: k.enabled === false }, k.enabled === false ? `${k.name} (disabled)` : k.name));
    if (!filt.querySelector(`option[value="${CSS.escape(k.name)}"]`)) filt.append(el('option', { value: k.name }, k.name));
  }
  const first = kinds.find((k) => k.name === 'sleep' && k.enabled !== false) || kinds.find((k) => k.enabled !== false);
  if (first) sel.value = first.name;
  sel.dataset.prev = sel.value;
  fillExample();
}

function fillExample() {
  const k = kinds.find((x) => x.name === $('f-kind').value);
  $('f-args').value = drafts.get($('f-kind').value) ?? (k ? json(k.example ?? {}) : '{}');
}

$('f-kind').addEventListener('change', () => {
  const sel = $('f-kind');
  if (sel.dataset.prev) drafts.set(sel.dataset.prev, $('f-args').value);
  sel.dataset.prev = sel.value;
  fillExample();
  clearErrors();
});
$('f-args').addEventListener('input', () => { drafts.set($('f-kind').value, $('f-args').value); });
for (const f of FIELDS) {
  $(fieldInput[f]).addEventListener('input', () => {
    const p = $(`err-${f}`);
    if (p.hidden) return;
    p.hidden = true;
    $(fieldInput[f]).removeAttribute('aria-invalid');
  });
}
$('f-args').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
});

function clearErrors() {
  for (const f of FIELDS) {
    const p = $(`err-${f}`);
    p.hidden = true; p.textContent = '';
    $(fieldInput[f]).removeAttribute('aria-invalid');
  }
}

function showFieldError(field, message, hint) {
  const p = $(`err-${field}`);
  p.replaceChildren(message, hint ? el('span', { class: 'hint' }, ` (${hint})`) : '');
  p.hidden = false;
  const input = $(fieldInput[field]);
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}

// Which form field a server error is about.
function errorField(e) {
  const m = (e.message || '').toLowerCase();
  if (e.code === 'invalid_json') return 'args';
  if (e.code === 'unknown_kind' || e.code === 'exec_disabled') return 'kind';
  for (const f of ['timeout_ms', 'max_attempts', 'priority']) if (m.includes(f)) return f;
  if (/\bargs\b/.test(m)) return 'args';
  if (/\bkind\b/.test(m)) return 'kind';
  return 'args';
}

// The request body.  Args go to the server as typed, so a syntax error is
// reported by the server itself, like for any other client.
function buildBody() {
  const parts = [`"kind":${JSON.stringify($('f-kind').value)}`];
  const args = $('f-args').value.trim();
  if (args) parts.push(`"args":${args}`);
  for (const [f, id] of [['priority', 'f-priority'], ['timeout_ms', 'f-timeout'], ['max_attempts', 'f-attempts']]) {
    const v = $(id).value.trim();
    if (v !== '') parts.push(`"${f}":${Number.isFinite(Number(v)) ? Number(v) : JSON.stringify(v)}`);
  }
  return `{${parts.join(',')}}`;
}

function localJsonHint() {
  const text = $('f-args').value.trim();
  if (!text) return null;
  try { JSON.parse(text); return null; } catch (e) { return e.message; }
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors();
  const out = $('submit-result');
  for (const [f, id] of [['priority', 'f-priority'], ['timeout_ms', 'f-timeout'], ['max_attempts', 'f-attempts'], ['count', 'f-count']]) {
    if ($(id).validity.badInput) { showFieldError(f, 'Enter a number.'); return; }
  }
  const count = Math.floor(Number($('f-count').value || 1));
  if (!(count >= 1 && count <= 5000)) { showFieldError('count', 'Between 1 and 5000 copies.'); return; }
  const body = buildBody();
  const btn = $('f-submit');
  btn.disabled = true;
  out.dataset.state = 'busy';
  out.textContent = count > 1 ? `Submitting 0 / ${count}…` : 'Submitting…';
  let done = 0, first = null, last = null, failure = null;
  const inflight = { n: 0 };
  const worker = async () => {
    while (!failure && done + inflight.n < count) {
      inflight.n++;
      try {
        const t = await api('/api/v1/tasks', { method: 'POST', body });
        done++;
        if (first === null || t.id < first) first = t.id;
        if (last === null || t.id > last) last = t.id;
        tableUpsert(t, false);
        scheduleFlush();
        if (count > 1 && done % 10 === 0) out.textContent = `Submitting ${done} / ${count}…`;
      } catch (err) {
        failure = failure || err;
      } finally { inflight.n--; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, 16) }, worker));
  btn.disabled = false;
  if (failure && !done) {
    out.dataset.state = 'error';
    out.textContent = '';
    if (failure.status === 0) { out.textContent = failure.message; return; }
    const field = errorField(failure);
    showFieldError(field, failure.message, field === 'args' ? localJsonHint() : null);
    return;
  }
  out.dataset.state = failure ? 'error' : 'ok';
  out.dataset.id = String(last);
  out.dataset.first = String(first);
  if (count === 1) {
    out.replaceChildren('Submitted ', el('a', { href: `#/tasks/${last}`, class: 'mono' }, `#${last}`));
  } else {
    out.replaceChildren(`Submitted ${fmtInt(done)} tasks `, el('span', { class: 'mono' }, `#${first}–#${last}`),
      failure ? ` · stopped: ${failure.message}` : '');
  }
  renderTable();
});

/* ------------------------------------------------------------------ events */

const pending = [];
let flushQueued = false;
// Counters for the curious (and the browser test): window.taskpool.
const counters = { events: 0, resyncs: 0, connects: 0, timeline };
window.taskpool = counters;

function scheduleFlush() {
  if (flushQueued) return;
  flushQueued = true;
  // rAF does not run in a hidden tab: fall back to a timer there
  if (document.hidden) setTimeout(flush, 500);
  else requestAnimationFrame(flush);
}

function onEvent(ev) {
  counters.events++;
  if (ev.type === 'resync') counters.resyncs++;
  pending.push(ev);
  if (pending.length > 50000) { flushQueued = false; setTimeout(flush, 0); flushQueued = true; return; }
  scheduleFlush();
}

function flush() {
  flushQueued = false;
  const evs = pending.splice(0);
  const latest = new Map();
  let resync = false;
  let poolDirty = false;
  for (const ev of evs) {
    let d;
    try { d = JSON.parse(ev.data); } catch { continue; }
    if (ev.type === 'task') {
      if (d.status === 'running') {
        const st = ts(d.started_at);
        running.set(d.id, { kind: d.kind, started: st ? st - timeline.offset : Date.now() });
        if (running.size > 2000) running.delete(running.keys().next().value);
      } else if (TERMINAL.has(d.status)) running.delete(d.id);
      timeline.sample(ts(d.status === 'queued' ? d.created_at : d.status === 'running' ? d.started_at : d.finished_at));
      timeline.task(d);
      latest.set(d.id, d);
      const w = d.worker_pid ? workers.get(d.worker_pid) : null;
      if (w && !w.leaving) {
        if (d.status === 'running') {
          const st = ts(d.started_at);
          w.state = 'busy'; w.task_id = d.id; w.taskKind = d.kind; w.taskStarted = st ? st - timeline.offset : Date.now();
          poolDirty = true;
        } else if (TERMINAL.has(d.status) && w.task_id === d.id) {
          // Once: a cancelled run's row is written again with its usage, a second terminal event.
          w.state = 'idle'; w.task_id = null; w.taskStarted = null;
          w.tasks_done++; w.evDone = (w.evDone || 0) + 1; w.lastStatus = d.status; poolDirty = true;
        }
      }
    } else if (ev.type === 'worker') {
      poolDirty = true;
      if (d.event === 'spawned') {
        upsertWorker({ pid: d.pid, state: 'idle', task_id: null, tasks_done: d.tasks_done ?? 0, started_at: d.started_at, rss_kb: null }, true);
        timeline.workerSpawned(d.pid, ts(d.started_at));
        workersSoon();
      } else if (d.event === 'exited') {
        const w = workers.get(d.pid);
        const label = exitLabel(d, w && w.lastStatus);
        const at = ts(d.exited_at) ?? timeline.now();
        removeWorker(d.pid, label, { died: d.reason === 'died', at, started: ts(d.started_at) });
        recordExit(d.reason, at - timeline.offset);
        timeline.workerExited(d.pid, at, d.reason, label);
        if (d.reason === 'died') deathToast(d.pid, label);
      }
    } else if (ev.type === 'resync') {
      resync = true;
    }
  }
  for (const t of latest.values()) { tableUpsert(t, true); detailEvent(t); }
  if (latest.size || !evs.length) renderTableSoon();
  if (poolDirty) renderPoolSoon();
  if (resync) doResync();
}

// Deaths in a burst make one toast.
const deaths = [];
let deathTimer = null;
function deathToast(pid, label) {
  deaths.push([pid, label]);
  if (deathTimer) return;
  deathTimer = setTimeout(() => {
    deathTimer = null;
    const list = deaths.splice(0);
    toast(list.length === 1 ? `Worker ${list[0][0]} ${list[0][1]}` : `${list.length} workers died (${list.map((x) => x[0]).join(', ')})`, 'warn');
  }, 300);
}

let resyncing = null;
function doResync() {
  if (resyncing) return;
  resyncing = Promise.allSettled([
    loadPool(true, true),
    api('/api/v1/stats').then((s) => { stats = s; renderStats(); }),
    table.before === null ? loadPage(null) : Promise.resolve(),
    detail.id ? fetchDetail() : Promise.resolve(),
  ]).finally(() => { resyncing = null; });
}

let started = false;             // initial state loaded
const stream = new EventStream('/api/v1/events', {
  onEvent,
  onState: (state, d) => {
    const wasDown = $('conn').dataset.state !== 'live';
    setConn(state, d);
    // After a gap the server replays what it still has (or sends resync);
    // workers are cheap to refetch either way.
    if (state === 'open') counters.connects++;
    if (state === 'open' && wasDown && started) loadWorkers(true).catch(() => {});
  },
});
// Back online, or back to a tab whose stream is down: reconnect now rather
// than at the end of the back-off.
window.addEventListener('online', () => stream.restart());
document.addEventListener('visibilitychange', () => { if (!document.hidden && $('conn').dataset.state !== 'live') stream.restart(); });

/* ------------------------------------------------------------------ clocks */

setInterval(() => {
  for (const w of workers.values()) {
    const n = (w.evDone || 0) - (w.evPrev || 0);
    w.evPrev = w.evDone || 0;
    w.rate = n >= 5 ? (w.rate >= 5 ? 0.5 * w.rate + 0.5 * n : n) : 0;
  }
  if (document.hidden) return;
  for (const w of workers.values()) updateCard(w);
  for (const row of table.byId.values()) if (row.tr) fillRow(row.tr, row.t);
  if (detail.task && !TERMINAL.has(detail.task.status)) renderDetail();
}, 1000);

/* ------------------------------------------------------------------ start */

async function start() {
  buildCounts();
  filtersFromUrl();
  stream.start();
  try {
    await Promise.all([
      loadKinds(),
      loadPool(false),
      api('/api/v1/stats').then((s) => { stats = s; renderStats(); }),
      loadPage(null),
    ]);
  } catch (e) {
    toast(`Could not load the dashboard: ${e.message}`, 'error', 8000);
  }
  started = true;
  document.body.dataset.ready = 'true';
  setTimeout(pollStats, 1000);
  setTimeout(pollWorkers, 3000);
  routeHash();
}

start();
