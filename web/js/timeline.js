// The timeline: a live Gantt chart on a <canvas>, one row per worker slot,
// one bar per task coloured by outcome.
//
// Data.  The chart opens from GET /api/v1/timeline (the server's last five
// minutes: workers, bars, 50 ms buckets of short tasks) and then follows the
// event stream.  Both come in the same order, so load() rebuilds everything
// from the answer and replays the events that arrived while it was on its way
// (beginSeed() starts recording them); a bar seen twice is kept once (by id).
// A task shorter than BUCKET_MS is folded on completion into its worker's
// bucket of counts by outcome, like the server does, instead of kept as a bar.
//
// Rows.  A worker that replaces a retired or dead one continues its row, so
// recycling does not grow the chart: rows are assigned greedily in birth
// order, each worker taking the free row (its last worker gone) whose worker
// left closest to its birth.  That keeps as many rows as workers were alive at
// once (never more than the pool's size: should an exit be late, the
// replacement joins the row whose worker leaves first).  Planned exits (retired, shut down, killed by the pool for a timeout or
// a cancel) are grey ticks on the row's edges; deaths are red lines.  Marks
// closer than MARK_PX merge.
//
// Drawing, built to stay smooth at thousands of tasks per second:
// - events only update plain data; drawing happens once per animation frame
//   (at most ~40 a second, fewer when a frame took long) while visible;
// - only what lies inside the window is visited (bars, buckets and workers are
//   kept in time order and found by binary search);
// - short tasks are counted into COL_W-px columns fixed in time (so they do not
//   flicker as the chart scrolls) and drawn as stacked blocks by outcome;
// - everything of one colour is one path, filled once.
//
// Keyboard.  The canvas is focusable: arrow keys move between items (a bar, or
// a block of short tasks BLOCK_COLS columns wide), Home/End go to a row's
// oldest/newest, Enter opens the task (a block's newest).  The tooltip shows
// what is focused and a live region says it.

import { fmtMs, fmtClock, el, cssVar, STATUS_LABEL, fmtInt, exitLabel } from './util.js';

const BUCKET_MS = 50;
const MAX_BARS = 1500;                     // per worker; the oldest fold into buckets
const KEEP_MS = 5 * 60 * 1000;             // longest window offered
const OUTCOMES = ['succeeded', 'failed', 'timed_out', 'cancelled'];
const LANE_H = 24;
const LANE_GAP = 6;
const AXIS_H = 22;
const COL_W = 2;
const BLOCK_COLS = 6;
const MARK_PX = 4;
// A retired worker's replacement is spawned before the exit is recorded (in
// the same millisecond): it may take the row of a worker that leaves this
// long after its birth, and no later.
const OVERLAP_MS = 50;
const ALPHA = [0.5, 0.68, 0.84, 1];        // blocks of 1, 2+, 8+, 30+ tasks
const alphaOf = (n) => (n >= 30 ? 3 : n >= 8 ? 2 : n >= 2 ? 1 : 0);
const PLANNED = new Set(['retired', 'shutdown', 'killed']);

// Index of the first element of a sorted array for which key(x) >= v.
function lowerBound(a, v, key) {
  let lo = 0, hi = a.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (key(a[m]) < v) lo = m + 1; else hi = m; }
  return lo;
}
const barEnd = (b) => (b.e === null ? Infinity : b.e);
const laneEnd = (l) => (l.died === null ? Infinity : l.died);
const bucketKey = (u) => u.k;

export class Timeline {
  constructor(canvas, tip, live, { onOpen }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.tip = tip;
    this.live = live;                      // aria-live text for keyboard moves
    this.onOpen = onOpen;
    this.windowMs = 120000;
    this.lanes = new Map();                // pid -> lane
    this.rows = [];                        // [{lanes: [lane, ...]}], lanes in birth order
    this.poolSize = null;                  // workers the pool runs (GET /api/v1/workers)
    this.rowsDirty = false;
    this.finished = new Map();             // runKey -> true, runs recently finished (bounded)
    this.openAt = new Map();               // id of a running task -> its lane
    this.journal = null;                   // calls recorded while a load() is on its way
    this.offset = 0;                       // server clock - local clock, ms
    this.offsetAt = 0;
    this.mouse = null;                     // {x, y} in CSS px while hovering
    this.hit = null;                       // the item under the mouse
    this.focus = null;                     // the item focused with the keyboard
    this.focused = false;                  // the canvas has focus
    this.tipAt = 0;
    this.lastDraw = 0;
    this.drawCost = 0;                     // ms the last draw took
    this.colors = {};
    this.readColors();
    this.resize();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.readColors());
    canvas.addEventListener('mousemove', (e) => { const r = canvas.getBoundingClientRect(); this.mouse = { x: e.clientX - r.left, y: e.clientY - r.top }; this.updateHit(); });
    canvas.addEventListener('mouseleave', () => { this.mouse = null; this.updateHit(); });
    canvas.addEventListener('mousedown', () => { if (this.hit) this.focus = this.keyOf(this.hit); });
    canvas.addEventListener('click', () => { if (this.hit && this.hit.id) this.onOpen(this.hit.id); });
    canvas.addEventListener('focus', () => { this.focused = true; if (!this.focus) this.moveFocus('first'); else this.renderTip(); });
    canvas.addEventListener('blur', () => { this.focused = false; this.renderTip(); });
    canvas.addEventListener('keydown', (e) => this.onKey(e));
    this.visible = true;
    new IntersectionObserver((ents) => { this.visible = ents[0].isIntersecting; }).observe(canvas);
    setInterval(() => this.prune(), 2000);
    const loop = (t) => {
      requestAnimationFrame(loop);
      // ~40 fps, and a frame at least 4x as long as drawing takes: under load
      // the chart gives up frames before the page does
      if (!this.visible || t - this.lastDraw < Math.max(24, 4 * this.drawCost)) return;
      this.lastDraw = t;
      this.draw();
      this.drawCost = performance.now() - t;
    };
    requestAnimationFrame(loop);
  }

  readColors() {
    const c = {};
    for (const s of ['running', ...OUTCOMES]) c[s] = cssVar(`--st-${s}`);
    c.text = cssVar('--text'); c.muted = cssVar('--muted'); c.grid = cssVar('--grid');
    c.lane = cssVar('--lane'); c.dead = cssVar('--st-failed'); c.focus = cssVar('--focus');
    c.planned = cssVar('--mark-planned');
    this.colors = c;
  }

  setWindow(ms) { this.windowMs = ms; this.updateHit(); if (this.focused) this.renderTip(); }

  now() { return Date.now() + this.offset; }

  // A server timestamp seen when its event arrived: it happened before now,
  // so the largest (timestamp - local now) seen lately bounds the clock skew.
  sample(serverMs) {
    if (serverMs === null) return;
    const d = serverMs - Date.now();
    const t = Date.now();
    if (d > this.offset || t - this.offsetAt > 30000) { this.offset = d; this.offsetAt = t; }
  }

  /* ---------------------------------------------------------------- data */

  // Records the calls that change the data until load() or abortSeed().
  beginSeed() { this.journal = []; }
  abortSeed() { this.journal = null; }

  // Rebuilds everything from a GET /api/v1/timeline answer, then replays the
  // events recorded since beginSeed().  offset: server clock - local clock.
  load(snap, offset) {
    const journal = this.journal || [];
    this.journal = null;
    this.offset = offset; this.offsetAt = Date.now();
    this.lanes = new Map();
    this.finished = new Map();
    this.openAt = new Map();
    this.rowsDirty = true;
    for (const w of snap.workers || []) {
      const l = this.lane(w.pid, w.started_at);
      if (w.exited_at !== null) this.exit(l, w.exited_at, w.reason, exitLabel(w));
      if (w.task) {
        const b = { id: w.task.id, kind: w.task.kind, s: w.task.started_at, e: null, st: 'running' };
        l.bars.push(b); l.open.set(b.id, b); this.openAt.set(b.id, l); l.busy = true;
      }
    }
    for (const [id, pid, s, e, st, kind] of snap.bars || []) {
      const l = this.laneAt(pid, s);
      const b = { id, kind, s, e, st };
      if (st === 'failed' && l.died !== null && !PLANNED.has(l.reason) && Math.abs(e - l.died) < 1000) b.died = true;
      l.bars.push(b);
      this.finished.set(runKey(id, s), true);
    }
    for (const [pid, s, e, n, succeeded, failed, timedOut, cancelled, id, kind, st] of snap.buckets || []) {
      const u = { k: Math.floor(s / BUCKET_MS), n, s, e, succeeded, failed, timed_out: timedOut, cancelled, id, kind, st };
      this.laneAt(pid, s).buckets.push(u);
    }
    for (const l of this.lanes.values()) {
      l.bars.sort((a, b) => a.s - b.s);
      l.buckets.sort((a, b) => a.k - b.k);
      for (const u of l.buckets) l.bucketAt.set(u.k, u);
    }
    // A recorded "queued again" whose next run follows in the record may be
    // older than the answer, and would close that next run's bar: drop it
    // (the exit of the task's old worker, recorded too, ends the old bar).
    const rerun = new Set();
    for (let i = journal.length - 1; i >= 0; i--) {
      const [fn, [t]] = journal[i];
      if (fn !== 'task') continue;
      if (t.status === 'running') rerun.add(t.id);
      else if (t.status === 'queued' && rerun.has(t.id)) journal[i] = null;
    }
    for (const e of journal) if (e) this[e[0]](...e[1]);
    this.resolveFocus();
  }

  // The lane of the worker pid, started at born if known.  A pid comes back
  // once the system has gone round them: a later worker on the pid of an
  // exited one gets a lane of its own, and the old one stays, under another
  // key, for as long as it is in the window.
  lane(pid, born) {
    let l = this.lanes.get(pid);
    if (l && !l.alive && born != null && l.born !== null && born > l.born) {
      this.lanes.delete(pid);
      this.lanes.set(`${pid}@${l.born}`, l);
      l = null;
    }
    if (!l) {
      l = { pid, alive: true, busy: false, born: born ?? null, died: null, reason: null, exit: '', bars: [], open: new Map(), buckets: [], bucketAt: new Map() };
      this.lanes.set(pid, l);
      this.rowsDirty = true;
    } else if (born && !l.born) { l.born = born; this.rowsDirty = true; }
    return l;
  }

  // The lane pid had at time t: the current one, or an earlier worker's on the same pid.
  laneAt(pid, t) {
    const l = this.lane(pid);
    if (l.born === null || t === null || t >= l.born) return l;
    let best = null;
    for (const x of this.lanes.values())
      if (x !== l && x.pid === pid && x.born !== null && x.born <= t && (!best || x.born > best.born)) best = x;
    return best || l;
  }

  // The live workers (GET /api/v1/workers): their lanes and whether busy.
  setWorkers(list) {
    for (const w of list) {
      const l = this.lane(w.pid, w.started_at ? Date.parse(w.started_at) : null);
      if (l.alive) l.busy = w.state === 'busy' || l.open.size > 0;
    }
  }

  workerSpawned(pid, startedAt) {
    if (this.journal) this.journal.push(['workerSpawned', [pid, startedAt]]);
    this.lane(pid, startedAt ?? this.now());
  }

  // reason: the server's (retired, shutdown, killed, died, or null if unknown).
  workerExited(pid, at, reason, words) {
    if (this.journal) this.journal.push(['workerExited', [pid, at, reason, words]]);
    const l = this.lane(pid);
    if (!l.alive) return;
    this.exit(l, at ?? this.now(), reason, words);
  }

  exit(l, at, reason, words) {
    l.alive = false; l.busy = false; l.died = at; l.reason = reason; l.exit = words || 'exited';
    this.rowsDirty = true;
    for (const b of l.open.values()) { b.e = at; b.st = 'failed'; b.died = true; this.finished.set(runKey(b.id, b.s), true); this.openAt.delete(b.id); }
    l.open.clear();
  }

  // A task object (event or list item).  Only started tasks have a place here.
  task(t) {
    if (this.journal) this.journal.push(['task', [t]]);
    if (t.status === 'queued') {             // back in the queue for another attempt
      const l = this.openAt.get(t.id);
      const b = l && l.open.get(t.id);
      if (b) { b.e = this.now(); b.st = 'failed'; b.died = !l.alive; l.open.delete(t.id); this.openAt.delete(t.id); }
      return;
    }
    const s = t.started_at ? Date.parse(t.started_at) : null;
    if (!t.worker_pid || s === null) return;
    const key = runKey(t.id, s);
    if (this.finished.has(key)) return;
    const l = this.laneAt(t.worker_pid, s);
    if (l.born === null) { l.born = s; this.rowsDirty = true; }
    if (t.status === 'running') {
      if (l.open.has(t.id) || !l.alive) return;
      const b = { id: t.id, kind: t.kind, s, e: null, st: 'running' };
      this.insertBar(l, b);
      l.open.set(b.id, b);
      this.openAt.set(b.id, l);
      l.busy = true;
      return;
    }
    // terminal
    this.finished.set(key, true);
    if (this.finished.size > 60000) {
      let n = 10000;
      for (const k of this.finished.keys()) { this.finished.delete(k); if (--n === 0) break; }
    }
    const end = t.finished_at ? Date.parse(t.finished_at) : this.now();
    const b = l.open.get(t.id);
    if (b) {
      l.open.delete(t.id);
      this.openAt.delete(t.id);
      b.e = end; b.st = t.status;
      if (end - b.s < BUCKET_MS) { l.bars.splice(l.bars.lastIndexOf(b), 1); this.bucket(l, b); }
    } else if (end - s < BUCKET_MS) {
      this.bucket(l, { id: t.id, kind: t.kind, s, e: end, st: t.status });
    } else {
      this.insertBar(l, { id: t.id, kind: t.kind, s, e: end, st: t.status });
    }
    l.busy = l.open.size > 0;
  }

  insertBar(l, b) {
    const bars = l.bars;
    let i = bars.length;
    while (i > 0 && bars[i - 1].s > b.s) i--;
    bars.splice(i, 0, b);
    if (bars.length > MAX_BARS) {
      const keep = [];
      for (const x of bars.splice(0, MAX_BARS >> 2)) { if (x.e === null) keep.push(x); else this.bucket(l, x); }
      bars.unshift(...keep);
    }
  }

  bucket(l, b) {
    const k = Math.floor(b.s / BUCKET_MS);
    let u = l.bucketAt.get(k);
    if (!u) {
      u = { k, n: 0, s: b.s, e: b.e, succeeded: 0, failed: 0, timed_out: 0, cancelled: 0, id: b.id, kind: b.kind, st: b.st };
      l.bucketAt.set(k, u);
      const bs = l.buckets;
      if (!bs.length || bs[bs.length - 1].k < k) bs.push(u);
      else bs.splice(lowerBound(bs, k, bucketKey), 0, u);
    }
    u.n++; u[b.st] = (u[b.st] || 0) + 1;
    if (b.s < u.s) u.s = b.s;
    if (b.e > u.e) u.e = b.e;
    if (b.id > u.id) { u.id = b.id; u.kind = b.kind; u.st = b.st; }
  }

  prune() {
    const cut = this.now() - KEEP_MS;
    const kcut = Math.floor(cut / BUCKET_MS);
    for (const [pid, l] of this.lanes) {
      if (!l.alive && l.died < cut) { this.lanes.delete(pid); this.rowsDirty = true; continue; }
      const i = lowerBound(l.bars, cut, barEnd);
      if (i) l.bars.splice(0, i);
      const j = lowerBound(l.buckets, kcut, bucketKey);
      if (j) for (const u of l.buckets.splice(0, j)) l.bucketAt.delete(u.k);
    }
  }

  // Greedy interval partitioning of the workers into rows (see the top).
  layoutRows() {
    if (!this.rowsDirty) return;
    this.rowsDirty = false;
    const lanes = [...this.lanes.values()].sort((a, b) => (a.born ?? -Infinity) - (b.born ?? -Infinity) || a.pid - b.pid);
    const rows = [];
    for (const l of lanes) {
      const born = l.born ?? -Infinity;
      let best = null, bestD = Infinity;
      for (const r of rows) {
        const last = r.lanes[r.lanes.length - 1];
        if (last.died === null || last.died > born + OVERLAP_MS) continue;
        const d = Math.abs(last.died - born);
        if (d < bestD) { best = r; bestD = d; }
      }
      if (!best && this.poolSize && rows.length >= this.poolSize) {
        best = rows.reduce((a, r) => (laneEnd(r.lanes[r.lanes.length - 1]) < laneEnd(a.lanes[a.lanes.length - 1]) ? r : a));
      }
      if (best) best.lanes.push(l);
      else rows.push({ lanes: [l] });
    }
    this.rows = rows;
  }

  /* ---------------------------------------------------------------- geometry */

  resize() {
    const box = this.canvas.parentElement;
    this.cssW = Math.max(200, box.clientWidth);
    this.dpr = window.devicePixelRatio || 1;
    this.sizeFor(this.visibleRows().length);
  }

  // Sizes the canvas for nRows; a new size clears it, so it is drawn at once.
  sizeFor(nRows) {
    const h = Math.max(1, nRows) * (LANE_H + LANE_GAP) + AXIS_H + 4;
    if (h === this.cssH && this.canvas.width === Math.round(this.cssW * this.dpr)) return;
    this.cssH = h;
    this.canvas.style.height = `${h}px`;
    this.canvas.width = Math.round(this.cssW * this.dpr);
    this.canvas.height = Math.round(h * this.dpr);
    if (!this.drawing) this.draw();
  }

  // Rows with a worker alive at some point of the window.
  visibleRows() {
    this.layoutRows();
    const t0 = this.now() - this.windowMs;
    return this.rows.filter((r) => { const l = r.lanes[r.lanes.length - 1]; return l.alive || l.died >= t0; });
  }

  geometry() {
    const labelW = this.cssW < 520 ? 64 : 96;
    const x0 = labelW;
    const w = this.cssW - labelW - 6;
    const t1 = this.now();
    const t0 = t1 - this.windowMs;
    const colMs = (this.windowMs * COL_W) / w;
    return { x0, w, t0, t1, labelW, colMs, blockMs: colMs * BLOCK_COLS, x: (t) => x0 + ((t - t0) / this.windowMs) * w };
  }

  // The lanes of a row that lived inside the window (they are in time order).
  lanesIn(r, g) {
    const i = lowerBound(r.lanes, g.t0, laneEnd);
    const out = [];
    for (let k = i; k < r.lanes.length; k++) {
      const l = r.lanes[k];
      if (l.born !== null && l.born > g.t1) break;
      out.push(l);
    }
    return out;
  }

  /* ---------------------------------------------------------------- drawing */

  draw() {
    const rows = this.visibleRows();
    this.drawing = true;
    this.sizeFor(rows.length);
    this.drawing = false;
    const { ctx, colors: C } = this;
    const g = this.geometry();
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.cssW, this.cssH);
    const plotBottom = Math.max(1, rows.length) * (LANE_H + LANE_GAP);
    const xEnd = g.x0 + g.w;

    // grid + axis
    const step = this.windowMs <= 30000 ? 5000 : this.windowMs <= 120000 ? 15000 : 30000;
    const labelEvery = this.cssW < 520 ? 2 : 1;
    ctx.font = '11px ui-sans-serif, system-ui, sans-serif';
    ctx.textBaseline = 'top';
    for (let k = 0; k * step <= this.windowMs; k++) {
      const x = g.x(g.t1 - k * step);
      ctx.fillStyle = C.grid;
      ctx.fillRect(Math.round(x), 0, 1, plotBottom);
      if (k % labelEvery) continue;
      ctx.fillStyle = C.muted;
      const s = (k * step) / 1000;
      const label = k === 0 ? 'now' : s % 60 === 0 ? `−${s / 60}m` : s > 60 ? `−${Math.floor(s / 60)}m${s % 60}s` : `−${s}s`;
      ctx.textAlign = k === 0 ? 'right' : x - g.x0 < 20 ? 'left' : 'center';
      ctx.fillText(label, x, plotBottom + 6);
    }

    // One path per colour: lane backgrounds, bars by status (running ones
    // apart, lighter), columns by outcome and opacity, and the marks.
    const P = () => new Path2D();
    const lanesPath = P(), gapPath = P(), planned = P(), deaths = P(), edges = P();
    const bars = Object.fromEntries(['running', ...OUTCOMES].map((s) => [s, P()]));
    const cols = OUTCOMES.map(() => ALPHA.map(P));
    const kmin = Math.floor(g.t0 / g.colMs);
    const ncol = Math.ceil(this.windowMs / g.colMs) + 2;
    if (!this.colBuf || this.colBuf.length < ncol * 4) this.colBuf = new Float64Array(ncol * 4);
    const buf = this.colBuf;
    let shown = 0;

    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    ctx.font = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace';
    rows.forEach((r, i) => {
      const y = i * (LANE_H + LANE_GAP) + 2;
      const cy = y + LANE_H / 2;
      const cur = r.lanes[r.lanes.length - 1];
      // label: the row's current PID
      ctx.fillStyle = cur.alive ? (cur.busy ? C.running : C.succeeded) : PLANNED.has(cur.reason) ? C.muted : C.dead;
      ctx.beginPath(); ctx.arc(6, cy, 3.5, 0, Math.PI * 2); ctx.fill();
      ctx.fillStyle = cur.alive ? C.text : C.muted;
      ctx.fillText(String(cur.pid), 15, cy);
      if (!cur.alive) ctx.fillRect(15, cy, ctx.measureText(String(cur.pid)).width, 1);

      // where a process lived: one background per run of back-to-back workers
      const lanes = this.lanesIn(r, g);
      let runA = null, runB = null, prevEnd = g.x0;
      const flush = () => {
        if (runA === null) return;
        if (runA > prevEnd + 2) gapPath.rect(prevEnd, cy, runA - prevEnd, 1);
        lanesPath.roundRect(runA, y, runB - runA, LANE_H, 5);
        prevEnd = runB; runA = null;
      };
      for (const l of lanes) {
        const xa = l.born !== null ? Math.max(g.x0, g.x(l.born)) : g.x0;
        const xb = l.died !== null ? Math.min(xEnd, g.x(l.died)) : xEnd;
        if (runA !== null && xa > runB + 1) flush();
        if (runA === null) runA = xa;
        runB = Math.max(runB ?? xb, xb);
      }
      flush();
      if (prevEnd < xEnd - 2) gapPath.rect(prevEnd, cy, xEnd - prevEnd, 1);

      // tasks: wide bars as bars, the rest counted into columns
      buf.fill(0, 0, ncol * 4);
      let anyCol = false;
      for (const l of lanes) {
        for (let k = lowerBound(l.bars, g.t0, barEnd); k < l.bars.length; k++) {
          const b = l.bars[k];
          if (b.s > g.t1) break;
          shown++;
          const xa = g.x(b.s), xb = g.x(b.e ?? g.t1);
          if (xb - xa < 3 && b.e !== null) {
            const c = Math.floor(b.s / g.colMs) - kmin;
            if (c >= 0 && c < ncol) { buf[c * 4 + OUTCOMES.indexOf(b.st)]++; anyCol = true; }
            continue;
          }
          const a = Math.max(g.x0, xa);
          bars[b.st].roundRect(a, y + 3, Math.max(2, xb - a - 1), LANE_H - 6, 3);
          if (b.e === null) edges.rect(xb - 2, y + 3, 2, LANE_H - 6);
        }
        const kb = Math.floor(g.t0 / BUCKET_MS);
        for (let k = lowerBound(l.buckets, kb, bucketKey); k < l.buckets.length; k++) {
          const u = l.buckets[k];
          if (u.e < g.t0) continue;
          shown += u.n;
          const c = Math.floor(u.s / g.colMs) - kmin;
          if (c < 0 || c >= ncol) continue;
          const o = c * 4;
          buf[o] += u.succeeded; buf[o + 1] += u.failed; buf[o + 2] += u.timed_out; buf[o + 3] += u.cancelled;
          anyCol = true;
        }
      }
      if (anyCol) {
        const hh = LANE_H - 6;
        for (let c = 0; c < ncol; c++) {
          const o = c * 4;
          const n = buf[o] + buf[o + 1] + buf[o + 2] + buf[o + 3];
          if (!n) continue;
          const x = g.x((kmin + c) * g.colMs);
          if (x < g.x0 || x >= xEnd) continue;
          const a = alphaOf(n);
          let yy = y + 3;
          for (let k = 3; k >= 0; k--) {      // rare outcomes on top
            if (!buf[o + k]) continue;
            const h = Math.min(Math.max(1.5, (buf[o + k] / n) * hh), y + 3 + hh - yy);
            cols[k][a].rect(x, yy, COL_W, h);
            yy += h;
            if (yy >= y + 3 + hh) break;
          }
        }
      }

      // exit marks, merged when closer than MARK_PX; a death wins its group
      let gx = -Infinity, gDeath = false;
      const mark = () => {
        if (gx === -Infinity) return;
        if (gDeath) deaths.rect(gx - 1, y - 1, 2, LANE_H + 2);
        else { planned.rect(gx - 0.5, y, 1, 4); planned.rect(gx - 0.5, y + LANE_H - 4, 1, 4); }
      };
      for (const l of lanes) {
        if (l.died === null) continue;
        const x = g.x(l.died);
        if (x <= g.x0 || x >= xEnd) continue;
        const death = !PLANNED.has(l.reason) && l.reason !== null;
        if (x - gx < MARK_PX) { gDeath ||= death; continue; }
        mark();
        gx = x; gDeath = death;
      }
      mark();
    });

    ctx.fillStyle = C.lane; ctx.fill(lanesPath);
    ctx.fillStyle = C.grid; ctx.fill(gapPath);
    for (let k = 0; k < 4; k++) {
      ctx.fillStyle = C[OUTCOMES[k]];
      for (let a = 0; a < ALPHA.length; a++) { ctx.globalAlpha = ALPHA[a]; ctx.fill(cols[k][a]); }
    }
    ctx.globalAlpha = 1;
    for (const s of OUTCOMES) { ctx.fillStyle = C[s]; ctx.fill(bars[s]); }
    ctx.fillStyle = C.running;
    ctx.globalAlpha = 0.8; ctx.fill(bars.running); ctx.globalAlpha = 1;
    ctx.fill(edges);
    ctx.fillStyle = C.planned; ctx.fill(planned);
    ctx.fillStyle = C.dead; ctx.fill(deaths);

    if (!rows.length) {
      ctx.fillStyle = C.muted; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.font = '13px ui-sans-serif, system-ui, sans-serif';
      ctx.fillText('waiting for workers…', g.x0 + g.w / 2, LANE_H / 2 + 2);
    }

    if (this.hit) {
      ctx.strokeStyle = C.text; ctx.lineWidth = 1.5;
      const b = this.boxOf(this.hit, g, rows);
      if (b) { ctx.beginPath(); ctx.roundRect(b.x - 1, b.y + 1, b.w + 2, b.h - 2, 3); ctx.stroke(); }
    }
    if (this.focused && this.focus) {
      const b = this.boxOf(this.focus, g, rows);
      if (b) {
        ctx.strokeStyle = C.focus; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.roundRect(b.x - 2, b.y - 1, b.w + 4, b.h + 2, 4); ctx.stroke();
      }
    }
    if (this.mouse && this.mouse.x > g.x0 && this.mouse.y < plotBottom) {
      ctx.fillStyle = C.muted; ctx.globalAlpha = 0.5;
      ctx.fillRect(Math.round(this.mouse.x), 0, 1, plotBottom);
      ctx.globalAlpha = 1;
    }

    const now = performance.now();
    if (!this.statAt || now - this.statAt > 500) {
      this.statAt = now;
      this.canvas.dataset.tasks = String(shown);
      this.canvas.dataset.lanes = [...this.lanes.values()].filter((l) => l.alive).map((l) => l.pid).join(' ');
      if (this.mouse) this.updateHit();
    }
    if (this.focused && this.focus && now - this.tipAt > 250) { this.resolveFocus(); this.renderTip(); }
  }

  /* ---------------------------------------------------------------- items */

  // What a row shows inside the window, oldest first: wide bars one by one,
  // short tasks in blocks of BLOCK_COLS columns (fixed in time).
  rowItems(ri, g) {
    const r = this.visibleRows()[ri];
    if (!r) return [];
    const items = [];
    const blocks = new Map();
    const block = (t, pid) => {
      const bk = Math.floor(t / g.blockMs);
      let b = blocks.get(bk);
      if (!b) {
        b = { type: 'block', row: ri, bk, s: bk * g.blockMs, e: (bk + 1) * g.blockMs, pid, n: 0, succeeded: 0, failed: 0, timed_out: 0, cancelled: 0, id: 0, kind: '', st: '', first: Infinity, last: 0 };
        blocks.set(bk, b); items.push(b);
      }
      return b;
    };
    const add = (b, u, n, pid) => {
      b.n += n;
      for (const k of OUTCOMES) b[k] += u[k] || 0;
      if (u.id > b.id) { b.id = u.id; b.kind = u.kind; b.st = u.st; b.pid = pid; }
      b.first = Math.min(b.first, u.s); b.last = Math.max(b.last, u.e);
    };
    for (const l of this.lanesIn(r, g)) {
      for (let k = lowerBound(l.bars, g.t0, barEnd); k < l.bars.length; k++) {
        const b = l.bars[k];
        if (b.s > g.t1) break;
        if (g.x(b.e ?? g.t1) - g.x(b.s) < 3 && b.e !== null) { add(block(b.s, l.pid), { ...b, [b.st]: 1 }, 1, l.pid); continue; }
        items.push({ type: 'bar', row: ri, id: b.id, kind: b.kind, st: b.st, s: b.s, e: b.e, pid: l.pid, died: b.died });
      }
      for (let k = lowerBound(l.buckets, Math.floor(g.t0 / BUCKET_MS), bucketKey); k < l.buckets.length; k++) {
        const u = l.buckets[k];
        if (u.e >= g.t0) add(block(u.s, l.pid), u, u.n, l.pid);
      }
    }
    return items.filter((it) => (it.e ?? g.t1) >= g.t0 && it.s <= g.t1).sort((a, b) => a.s - b.s);
  }

  boxOf(it, g, rows) {
    if (it.row >= rows.length) return null;
    const y = it.row * (LANE_H + LANE_GAP) + 2;
    const xa = Math.max(g.x0, g.x(it.s));
    const xb = Math.min(g.x0 + g.w, g.x(it.e ?? g.t1));
    return { x: xa, y: y + 2, w: Math.max(2, xb - xa - (it.type === 'bar' ? 1 : 0)), h: LANE_H - 4 };
  }

  // Stable identity of an item: a bar by task id, a block by its time slot.
  keyOf(it) { return { type: it.type, row: it.row, id: it.id, bk: it.bk, s: it.s, e: it.e, item: it }; }

  // Finds the focused item again in the current data (it moves, grows, or
  // scrolls out of the window: then the oldest item of its row).
  resolveFocus() {
    const f = this.focus;
    if (!f) return;
    const g = this.geometry();
    const rows = this.visibleRows();
    if (!rows.length) { this.focus = null; return; }
    const row = Math.min(f.row, rows.length - 1);
    const items = this.rowItems(row, g);
    let it = items.find((x) => x.type === f.type && (f.type === 'bar' ? x.id === f.id : x.bk === f.bk));
    if (!it) it = items.find((x) => (x.e ?? g.t1) >= f.s) || items[items.length - 1];
    this.focus = it ? this.keyOf(it) : { ...f, row, item: null };
  }

  moveFocus(how) {
    const g = this.geometry();
    const rows = this.visibleRows();
    if (!rows.length) { this.focus = null; this.renderTip(); return; }
    const f = this.focus;
    let row = f ? Math.min(f.row, rows.length - 1) : 0;
    if (how === 'up') row = Math.max(0, row - 1);
    if (how === 'down') row = Math.min(rows.length - 1, row + 1);
    let items = this.rowItems(row, g);
    if (!items.length && (how === 'up' || how === 'down' || how === 'first')) {
      // skip rows with nothing in the window
      for (let k = 1; k < rows.length && !items.length; k++) {
        const alt = how === 'up' ? row - k : row + k;
        if (alt < 0 || alt >= rows.length) break;
        items = this.rowItems(alt, g);
        if (items.length) row = alt;
      }
    }
    let it = null;
    if (items.length) {
      const i = f && f.item ? items.findIndex((x) => x.type === f.type && (f.type === 'bar' ? x.id === f.id : x.bk === f.bk)) : -1;
      if (how === 'first' || how === 'end') it = items[items.length - 1];
      else if (how === 'home') it = items[0];
      else if (how === 'left') it = items[i > 0 ? i - 1 : 0];
      else if (how === 'right') it = items[i >= 0 ? Math.min(items.length - 1, i + 1) : items.length - 1];
      else {                                 // up, down: the item nearest in time
        const t = f ? (f.s + (f.e ?? g.t1)) / 2 : g.t1;
        it = items.reduce((a, x) => (Math.abs((x.s + (x.e ?? g.t1)) / 2 - t) < Math.abs((a.s + (a.e ?? g.t1)) / 2 - t) ? x : a));
      }
    }
    this.focus = it ? this.keyOf(it) : { type: 'none', row, s: g.t1, e: g.t1, item: null };
    this.renderTip();
    if (it) this.live.textContent = this.describe(it);
  }

  onKey(e) {
    const keys = { ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down', Home: 'home', End: 'end' };
    if (keys[e.key]) { e.preventDefault(); this.moveFocus(keys[e.key]); return; }
    if ((e.key === 'Enter' || e.key === ' ') && this.focus && this.focus.item && this.focus.item.id) {
      e.preventDefault();
      this.onOpen(this.focus.item.id);
    }
  }

  // Finds what is under the mouse and fills the tooltip.
  updateHit() {
    const m = this.mouse;
    let hit = null, lane = null;
    if (m) {
      const g = this.geometry();
      const rows = this.visibleRows();
      const ri = Math.floor((m.y - 2) / (LANE_H + LANE_GAP));
      const r = rows[ri];
      if (r && m.x >= g.x0 && m.y - 2 - ri * (LANE_H + LANE_GAP) <= LANE_H) {
        const items = this.rowItems(ri, g);
        const on = (it) => { const xa = g.x(it.s), xb = Math.max(xa + 2, g.x(it.e ?? g.t1)); return m.x >= xa - 1 && m.x <= xb + 1; };
        hit = items.find((it) => it.type === 'bar' && on(it)) || items.find((it) => it.type === 'block' && on(it)) || null;
        if (!hit) {                          // nothing there: say whose row it is
          const t = g.t0 + ((m.x - g.x0) / g.w) * this.windowMs;
          lane = r.lanes[0];
          for (const c of r.lanes) if (c.born === null || c.born <= t) lane = c;
          lane = { lane, t };
        }
      }
    }
    this.hit = hit;
    this.canvas.style.cursor = hit && hit.id ? 'pointer' : 'default';
    this.renderTip(lane);
  }

  describe(it) {
    if (it.type === 'block' && it.n > 1) {
      const parts = OUTCOMES.filter((k) => it[k]).map((k) => `${fmtInt(it[k])} ${STATUS_LABEL[k]}`);
      return `${fmtInt(it.n)} tasks on worker ${it.pid}: ${parts.join(', ')}; ${fmtClock(it.first)} to ${fmtClock(it.last)}. Enter opens the newest, #${it.id}.`;
    }
    const dur = (it.e ?? this.now()) - (it.type === 'block' ? it.first : it.s);
    return `Task #${it.id} ${it.kind || ''}, ${it.died ? 'worker died' : STATUS_LABEL[it.st] || it.st}, ${fmtMs(dur)}, worker ${it.pid}.`;
  }

  // The tooltip: of the item under the mouse, else of the focused item.
  renderTip(empty) {
    const tip = this.tip;
    const fromMouse = this.mouse && (this.hit || empty);
    const it = fromMouse ? this.hit : this.focused && this.focus ? this.focus.item : null;
    this.tipAt = performance.now();
    if (!fromMouse && !it) { tip.hidden = true; return; }
    tip.replaceChildren();
    if (!it) {
      const { lane: l, t } = empty;
      tip.append(el('div', { class: 'tip-title' }, el('span', { class: 'mono' }, `worker ${l.pid}`)),
        el('div', { class: 'tip-row' }, l.alive ? (l.busy ? 'busy' : 'idle') : `exited · ${l.exit}`),
        el('div', { class: 'tip-row muted' }, fmtClock(t)));
    } else if (it.type === 'block' && it.n > 1) {
      tip.append(el('div', { class: 'tip-title' }, `${fmtInt(it.n)} tasks`, el('span', { class: 'muted' }, ` · worker ${it.pid}`)));
      for (const k of OUTCOMES) if (it[k]) tip.append(el('div', { class: 'tip-row' }, el('i', { class: 'sw', dataset: { status: k } }), `${fmtInt(it[k])} ${STATUS_LABEL[k]}`));
      tip.append(el('div', { class: 'tip-row muted' }, `${fmtClock(it.first)} – ${fmtClock(it.last)}`),
        el('div', { class: 'tip-row muted' }, `${fromMouse ? 'click' : 'Enter'}: newest, #${it.id}`));
    } else {
      const s = it.type === 'block' ? it.first : it.s;
      const e = it.type === 'block' ? it.last : it.e;
      const dur = (e ?? this.now()) - s;
      tip.append(el('div', { class: 'tip-title' }, el('span', { class: 'mono' }, `#${it.id}`), ` ${it.kind || ''}`),
        el('div', { class: 'tip-row' }, el('i', { class: 'sw', dataset: { status: it.st } }), it.died ? 'worker died' : STATUS_LABEL[it.st] || it.st, ` · ${fmtMs(dur)}`),
        el('div', { class: 'tip-row muted' }, `worker ${it.pid} · ${fmtClock(s)}`));
    }
    tip.hidden = false;
    const box = this.canvas.parentElement.getBoundingClientRect();
    const tw = tip.offsetWidth, th = tip.offsetHeight;
    let x, y;
    if (fromMouse) {
      x = this.mouse.x + 14; y = this.mouse.y + 14;
      if (x + tw > box.width) x = this.mouse.x - tw - 10;
      if (y + th > this.cssH + 30) y = this.mouse.y - th - 10;
    } else {                                 // beside the focused item, below its row
      const b = this.boxOf(this.focus, this.geometry(), this.visibleRows());
      x = b ? Math.min(box.width - tw, b.x + b.w / 2 - tw / 2) : 0;
      y = b ? b.y + b.h + 6 : 0;
    }
    tip.style.transform = `translate(${Math.max(0, x)}px, ${Math.max(0, y)}px)`;
  }

  // What the chart shows now, for tests and the curious: rows in order, each
  // with the workers of the window and their bars [id, status].
  snapshot() {
    const g = this.geometry();
    return this.visibleRows().map((r) => ({
      pid: r.lanes[r.lanes.length - 1].pid,
      lanes: this.lanesIn(r, g).map((l) => ({
        pid: l.pid, alive: l.alive, reason: l.reason, born: l.born, died: l.died,
        bars: l.bars.filter((b) => barEnd(b) >= g.t0 && b.s <= g.t1).map((b) => [b.id, b.st]),
        short: l.buckets.reduce((a, u) => a + (u.e >= g.t0 ? u.n : 0), 0),
      })),
    }));
  }

  focusedItem() { return this.focus && this.focus.item ? { type: this.focus.item.type, id: this.focus.item.id } : null; }
}

// A run of a task: a retry has the same id, but starts later.
function runKey(id, startedAt) { return `${id}@${startedAt}`; }
