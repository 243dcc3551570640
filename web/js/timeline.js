// The timeline: a live Gantt chart on a <canvas>, one lane per worker PID,
// one bar per task coloured by outcome.
//
// Built to stay smooth with thousands of tasks per second:
// - events only update plain data (no drawing); drawing happens once per
//   animation frame (capped at ~40 fps) and only while the page is visible;
// - a worker runs one task at a time, so a lane's running task is its last
//   bar: a task shorter than BUCKET_MS is folded on completion into a per-lane
//   bucket of counts by outcome instead of being kept as a bar;
// - bars per lane are capped (MAX_BARS; the oldest fold into buckets);
// - at draw time bars narrower than 3 px and buckets are merged per 2-px
//   column into stacked blocks coloured by the mix of outcomes.
//
// Lanes are grouped in rows ("slots"): a worker that replaces a dead or
// retired one continues on its row, after a red exit mark and a green spawn
// mark, so recycling does not grow the chart without bound.  The label shows
// the row's current PID; hovering anywhere names the PID of that moment.

import { ts, fmtMs, fmtClock, el, cssVar, STATUS_LABEL } from './util.js';

const BUCKET_MS = 50;
const MAX_BARS = 1500;
const KEEP_MS = 5 * 60 * 1000;             // longest window offered
const OUTCOMES = ['succeeded', 'failed', 'timed_out', 'cancelled'];
const LANE_H = 24;
const LANE_GAP = 6;
const AXIS_H = 22;
const COL_W = 2;
const REPLACE_MS = 3000;                   // a worker born this close to another's death replaces it

export class Timeline {
  constructor(canvas, tip, { onOpen }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.tip = tip;
    this.onOpen = onOpen;
    this.windowMs = 120000;
    this.lanes = new Map();                // pid -> lane
    this.slots = [];                       // rows: {lanes: [lane, ...]} in birth order
    this.finished = new Map();             // id -> true, recently finished (bounded)
    this.offset = 0;                       // server clock - local clock, ms
    this.offsetAt = 0;
    this.mouse = null;                     // {x, y} in CSS px while hovering
    this.hit = null;                       // what the mouse is on
    this.lastDraw = 0;
    this.colors = {};
    this.readColors();
    this.resize();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.readColors());
    canvas.addEventListener('mousemove', (e) => { const r = canvas.getBoundingClientRect(); this.mouse = { x: e.clientX - r.left, y: e.clientY - r.top }; this.updateHit(); });
    canvas.addEventListener('mouseleave', () => { this.mouse = null; this.updateHit(); });
    canvas.addEventListener('click', () => { if (this.hit && this.hit.id) this.onOpen(this.hit.id); });
    this.visible = true;
    new IntersectionObserver((ents) => { this.visible = ents[0].isIntersecting; }).observe(canvas);
    setInterval(() => this.prune(), 2000);
    const loop = (t) => {
      requestAnimationFrame(loop);
      if (!this.visible || t - this.lastDraw < 24) return;
      this.lastDraw = t;
      this.draw();
    };
    requestAnimationFrame(loop);
  }

  readColors() {
    const c = {};
    for (const s of ['running', ...OUTCOMES]) c[s] = cssVar(`--st-${s}`);
    c.text = cssVar('--text'); c.muted = cssVar('--muted'); c.grid = cssVar('--grid');
    c.lane = cssVar('--lane'); c.surface = cssVar('--surface'); c.dead = cssVar('--st-failed');
    c.accent = cssVar('--accent');
    this.colors = c;
  }

  setWindow(ms) { this.windowMs = ms; this.updateHit(); }

  now() { return Date.now() + this.offset; }

  // A server timestamp seen when its event arrived: it happened before now,
  // so the largest (timestamp - local now) seen lately bounds the clock skew.
  sample(serverMs) {
    if (serverMs === null) return;
    const d = serverMs - Date.now();
    const t = Date.now();
    if (d > this.offset || t - this.offsetAt > 30000) { this.offset = d; this.offsetAt = t; }
  }

  lane(pid, born) {
    let l = this.lanes.get(pid);
    if (!l) {
      l = { pid, alive: true, busy: false, born: born ?? null, died: null, exit: '', bars: [], byId: new Map(), buckets: new Map() };
      this.lanes.set(pid, l);
      // continue the row of a worker that died around the time this one
      // was born (its replacement); else start a row of its own
      const t = born ?? this.now();
      let best = null;
      for (const sl of this.slots) {
        const last = sl.lanes[sl.lanes.length - 1];
        if (last.alive || last.died === null || Math.abs(last.died - t) > REPLACE_MS) continue;
        if (!best || last.died > best.lanes[best.lanes.length - 1].died) best = sl;
      }
      if (best) best.lanes.push(l);
      else this.slots.push({ lanes: [l] });
    } else if (born && !l.born) l.born = born;
    return l;
  }

  slotOf(l) { return this.slots.find((sl) => sl.lanes.includes(l)); }

  // The live set of workers (from GET /api/v1/workers): marks the others dead.
  setWorkers(list) {
    const live = new Set();
    for (const w of list) {
      const l = this.lane(w.pid, ts(w.started_at));
      l.alive = true; l.busy = w.state === 'busy'; live.add(w.pid);
    }
    for (const l of this.lanes.values()) {
      if (l.alive && !live.has(l.pid)) this.workerExited(l.pid, this.now(), 'exited');
    }
  }

  workerSpawned(pid, startedAt) { const l = this.lane(pid, startedAt ?? this.now()); l.alive = true; }

  workerExited(pid, at, label) {
    const l = this.lane(pid);
    if (!l.alive && l.died) return;
    l.alive = false; l.busy = false; l.died = at ?? this.now(); l.exit = label || 'exited';
    // The replacement may have been announced before this exit: move a
    // worker born around now that still has a row of its own onto this row.
    const home = this.slotOf(l);
    if (home && home.lanes[home.lanes.length - 1] === l) {
      const other = this.slots.find((sl) => sl !== home && sl.lanes.length === 1 && sl.lanes[0].alive
        && sl.lanes[0].born !== null && Math.abs(sl.lanes[0].born - l.died) <= REPLACE_MS);
      if (other) {
        home.lanes.push(other.lanes[0]);
        this.slots.splice(this.slots.indexOf(other), 1);
      }
    }
    for (const b of l.bars) {
      if (b.e === null) { b.e = l.died; b.st = 'failed'; b.died = true; this.finished.set(b.id, true); l.byId.delete(b.id); }
    }
  }

  setBusy(pid, busy) { const l = this.lanes.get(pid); if (l) l.busy = busy; }

  // A task object (event or list item).  Only started tasks have a place here.
  task(t) {
    const s = ts(t.started_at);
    if (t.status === 'queued') {             // re-queued after its worker died
      for (const l of this.lanes.values()) {
        const b = l.byId.get(t.id);
        if (b && b.e === null) { b.e = this.now(); b.st = 'failed'; b.died = true; l.byId.delete(t.id); }
      }
      return;
    }
    if (!t.worker_pid || s === null) return;
    if (this.finished.has(t.id) && t.status === 'running') return;
    const l = this.lane(t.worker_pid);
    const e = ts(t.finished_at);
    if (t.status === 'running') {
      if (l.byId.has(t.id)) return;
      const b = { id: t.id, kind: t.kind, s, e: null, st: 'running' };
      this.insertBar(l, b);
      l.busy = true;
      return;
    }
    // terminal
    if (this.finished.has(t.id)) return;
    this.finished.set(t.id, true);
    if (this.finished.size > 60000) {
      let n = 10000;
      for (const k of this.finished.keys()) { this.finished.delete(k); if (--n === 0) break; }
    }
    const end = e ?? this.now();
    const b = l.byId.get(t.id);
    if (b) {
      b.e = end; b.st = t.status; l.byId.delete(t.id);
      if (end - b.s < BUCKET_MS && l.bars[l.bars.length - 1] === b) { l.bars.pop(); this.bucket(l, b); }
    } else if (end - s < BUCKET_MS) {
      this.bucket(l, { id: t.id, kind: t.kind, s, e: end, st: t.status });
    } else {
      this.insertBar(l, { id: t.id, kind: t.kind, s, e: end, st: t.status });
    }
    if (l.byId.size === 0) l.busy = false;
  }

  insertBar(l, b) {
    const bars = l.bars;
    let i = bars.length;
    while (i > 0 && bars[i - 1].s > b.s) i--;
    bars.splice(i, 0, b);
    if (b.e === null) l.byId.set(b.id, b);
    if (bars.length > MAX_BARS) {
      const cut = bars.splice(0, MAX_BARS >> 2);
      for (const x of cut) { if (x.e === null) { bars.unshift(x); continue; } this.bucket(l, x); }
    }
  }

  bucket(l, b) {
    const k = Math.floor(b.s / BUCKET_MS);
    let u = l.buckets.get(k);
    if (!u) { u = { n: 0, s: b.s, e: b.e, succeeded: 0, failed: 0, timed_out: 0, cancelled: 0, id: b.id, kind: b.kind, st: b.st }; l.buckets.set(k, u); }
    u.n++; u[b.st] = (u[b.st] || 0) + 1;
    if (b.s < u.s) u.s = b.s;
    if (b.e > u.e) u.e = b.e;
    if (b.id > u.id) { u.id = b.id; u.kind = b.kind; u.st = b.st; }
  }

  prune() {
    const cut = this.now() - KEEP_MS;
    const kcut = Math.floor(cut / BUCKET_MS);
    for (const [pid, l] of this.lanes) {
      if (l.bars.length && l.bars[0].s < cut) l.bars = l.bars.filter((b) => b.e === null || b.e >= cut);
      for (const k of l.buckets.keys()) if (k < kcut) l.buckets.delete(k);
      if (!l.alive && l.died < cut) {
        this.lanes.delete(pid);
        for (const sl of this.slots) { const i = sl.lanes.indexOf(l); if (i >= 0) sl.lanes.splice(i, 1); }
      }
    }
    this.slots = this.slots.filter((sl) => sl.lanes.length);
  }

  resize() {
    const box = this.canvas.parentElement;
    this.cssW = Math.max(200, box.clientWidth);
    this.dpr = window.devicePixelRatio || 1;
    this.sizeFor(this.visibleLanes().length);
  }

  sizeFor(nLanes) {
    const h = Math.max(1, nLanes) * (LANE_H + LANE_GAP) + AXIS_H + 4;
    if (h === this.cssH && this.canvas.width === Math.round(this.cssW * this.dpr)) return;
    this.cssH = h;
    this.canvas.style.height = `${h}px`;
    this.canvas.width = Math.round(this.cssW * this.dpr);
    this.canvas.height = Math.round(h * this.dpr);
  }

  visibleLanes() {
    const t0 = this.now() - this.windowMs;
    return this.slots.filter((sl) => sl.lanes.some((l) => l.alive || l.died >= t0));
  }

  geometry() {
    const labelW = this.cssW < 520 ? 64 : 96;
    const x0 = labelW;
    const w = this.cssW - labelW - 6;
    const t1 = this.now();
    const t0 = t1 - this.windowMs;
    return { x0, w, t0, t1, labelW, x: (t) => x0 + ((t - t0) / this.windowMs) * w };
  }

  draw() {
    const slots = this.visibleLanes();
    this.sizeFor(slots.length);
    const { ctx, colors: C } = this;
    const g = this.geometry();
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.cssW, this.cssH);
    const plotBottom = Math.max(1, slots.length) * (LANE_H + LANE_GAP);

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

    let shown = 0;
    const ncol = Math.ceil(g.w / COL_W) + 1;
    if (!this.cols || this.cols.length !== ncol * 5) this.cols = new Float64Array(ncol * 5);
    const cols = this.cols;
    const xEnd = g.x0 + g.w;
    slots.forEach((sl, i) => {
      const y = i * (LANE_H + LANE_GAP) + 2;
      const cur = sl.lanes[sl.lanes.length - 1];
      // label: the row's current PID
      ctx.textAlign = 'left';
      ctx.textBaseline = 'middle';
      const cy = y + LANE_H / 2;
      ctx.fillStyle = cur.alive ? (cur.busy ? C.running : C.succeeded) : C.dead;
      ctx.beginPath(); ctx.arc(6, cy, 3.5, 0, Math.PI * 2); ctx.fill();
      ctx.fillStyle = cur.alive ? C.text : C.muted;
      ctx.font = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace';
      ctx.fillText(String(cur.pid), 15, cy);
      if (!cur.alive) ctx.fillRect(15, cy, ctx.measureText(String(cur.pid)).width, 1);

      // the row: a lane where a process lived, a thin dashed line elsewhere
      let prevEnd = g.x0;
      const gap = (xa, xb) => {
        if (xb - xa < 2) return;
        ctx.strokeStyle = C.grid; ctx.lineWidth = 1; ctx.setLineDash([3, 4]);
        ctx.beginPath(); ctx.moveTo(xa, cy + 0.5); ctx.lineTo(xb, cy + 0.5); ctx.stroke(); ctx.setLineDash([]);
      };
      sl.lanes.forEach((l) => {
        const xa = l.born !== null ? Math.max(g.x0, g.x(l.born)) : g.x0;
        const xb = l.died !== null ? Math.min(xEnd, g.x(l.died)) : xEnd;
        if (xa > prevEnd + 1) gap(prevEnd, Math.min(xa, xEnd));
        prevEnd = Math.max(prevEnd, xb);
        if (xb <= g.x0 || xa >= xEnd) return;
        ctx.fillStyle = C.lane;
        roundRect(ctx, xa, y, xb - xa, LANE_H, 5); ctx.fill();
        shown += this.drawLane(l, g, y, Math.max(g.x0, xa - 2), Math.min(xEnd, xb + 2), cols, ncol);
      });
      if (prevEnd < xEnd - 1) gap(prevEnd, xEnd);
      for (const l of sl.lanes) {           // exit and spawn marks
        if (l.died !== null) { const x = g.x(l.died); if (x > g.x0 && x < xEnd) { ctx.fillStyle = C.dead; ctx.fillRect(x - 1, y, 2, LANE_H); } }
        if (l.born !== null) { const x = g.x(l.born); if (x > g.x0 + 2 && x < xEnd) { ctx.fillStyle = C.succeeded; tri(ctx, x + 3, y); } }
      }
    });

    if (!slots.length) {
      ctx.fillStyle = C.muted; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.font = '13px ui-sans-serif, system-ui, sans-serif';
      ctx.fillText('waiting for workers…', g.x0 + g.w / 2, LANE_H / 2 + 2);
    }

    if (this.hit && this.hit.box) {
      const b = this.hit.box;
      ctx.strokeStyle = C.text; ctx.lineWidth = 1.5;
      roundRect(ctx, b.x - 1, b.y + 1, b.w + 2, b.h - 2, 3); ctx.stroke();
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
  }

  // Draws one worker's bars between x-limits ca..cb of its row; returns how
  // many tasks it drew.
  drawLane(l, g, y, ca, cb, cols, ncol) {
    const { ctx, colors: C } = this;
    let shown = 0;
    cols.fill(0);
    let anyCol = false;
    ctx.save();
    ctx.beginPath(); ctx.rect(ca, y, cb - ca, LANE_H); ctx.clip();
    for (const b of l.bars) {
      const e = b.e ?? g.t1;
      if (e < g.t0 || b.s > g.t1) continue;
      shown++;
      const xa = g.x(b.s), xb = g.x(e);
      if (xb - xa < 3 && b.e !== null) {
        const c = Math.floor((xa - g.x0) / COL_W);
        if (c >= 0 && c < ncol) { cols[c * 5 + OUTCOMES.indexOf(b.st)] += 1; anyCol = true; }
        continue;
      }
      ctx.fillStyle = C[b.st] || C.muted;
      ctx.globalAlpha = b.e === null ? 0.8 : 1;
      roundRect(ctx, xa, y + 3, Math.max(2, xb - xa - 1), LANE_H - 6, 3); ctx.fill();
      ctx.globalAlpha = 1;
      if (b.e === null) ctx.fillRect(xb - 2, y + 3, 2, LANE_H - 6);   // the running edge
    }
    for (const u of l.buckets.values()) {
      if (u.e < g.t0) continue;
      shown += u.n;
      const c = Math.floor((g.x(u.s) - g.x0) / COL_W);
      if (c < 0 || c >= ncol) continue;
      for (let k = 0; k < 4; k++) cols[c * 5 + k] += u[OUTCOMES[k]];
      anyCol = true;
    }
    if (anyCol) {
      const hh = LANE_H - 6;
      for (let c = 0; c < ncol; c++) {
        const o = c * 5;
        const n = cols[o] + cols[o + 1] + cols[o + 2] + cols[o + 3];
        if (!n) continue;
        const x = g.x0 + c * COL_W;
        ctx.globalAlpha = n === 1 ? 1 : 0.6 + 0.4 * Math.min(1, Math.log10(n) / 2);
        let yy = y + 3;
        for (let k = 3; k >= 0; k--) {      // rare outcomes on top
          if (!cols[o + k]) continue;
          const h = Math.min(Math.max(1.5, (cols[o + k] / n) * hh), y + 3 + hh - yy);
          ctx.fillStyle = C[OUTCOMES[k]];
          ctx.fillRect(x, yy, COL_W, h);
          yy += h;
          if (yy >= y + 3 + hh) break;
        }
      }
      ctx.globalAlpha = 1;
    }
    ctx.restore();
    return shown;
  }

  // Finds what is under the mouse and fills the tooltip.
  updateHit() {
    const m = this.mouse;
    let hit = null;
    if (m) {
      const g = this.geometry();
      const slots = this.visibleLanes();
      const i = Math.floor((m.y - 2) / (LANE_H + LANE_GAP));
      const sl = slots[i];
      if (sl && m.x >= g.x0 && m.y - 2 - i * (LANE_H + LANE_GAP) <= LANE_H) {
        const y = i * (LANE_H + LANE_GAP) + 2;
        const t = g.t0 + ((m.x - g.x0) / g.w) * this.windowMs;
        // the worker of this row at time t: the last one born before t
        let l = sl.lanes[0];
        for (const c of sl.lanes) if (c.born === null || c.born <= t) l = c;
        for (const b of l.bars) {
          const e = b.e ?? g.t1;
          const xa = g.x(b.s), xb = g.x(e);
          if (xb - xa < 3 && b.e !== null) continue;
          if (m.x >= xa - 1 && m.x <= Math.max(xa + 2, xb) + 1) {
            hit = { id: b.id, kind: b.kind, st: b.st, s: b.s, e: b.e, pid: l.pid, died: b.died, box: { x: xa, y: y + 2, w: Math.max(2, xb - xa - 1), h: LANE_H - 4 } };
          }
        }
        if (!hit) {                         // the merged columns under the mouse
          const c = Math.floor((m.x - g.x0) / COL_W);
          const ca = g.x0 + (c - 1) * COL_W, cb = g.x0 + (c + 2) * COL_W;
          const agg = { n: 0, succeeded: 0, failed: 0, timed_out: 0, cancelled: 0, id: 0, kind: '', st: '', s: Infinity, e: 0 };
          const add = (u, n) => {
            agg.n += n;
            for (const k of OUTCOMES) agg[k] += u[k] || 0;
            if (u.id > agg.id) { agg.id = u.id; agg.kind = u.kind; agg.st = u.st; }
            agg.s = Math.min(agg.s, u.s); agg.e = Math.max(agg.e, u.e);
          };
          for (const b of l.bars) {
            if (b.e === null) continue;
            const xa = g.x(b.s), xb = g.x(b.e);
            if (xb - xa >= 3 || xa < ca || xa >= cb) continue;
            add({ ...b, [b.st]: 1 }, 1);
          }
          for (const u of l.buckets.values()) {
            const xa = g.x(u.s);
            if (xa < ca || xa >= cb) continue;
            add(u, u.n);
          }
          if (agg.n) hit = { agg, pid: l.pid, id: agg.id, box: { x: ca, y: y + 2, w: cb - ca, h: LANE_H - 4 } };
        }
        if (!hit) hit = { pid: l.pid, t, lane: l, none: true };
      }
    }
    this.hit = hit && !hit.none ? hit : null;
    this.canvas.style.cursor = this.hit && this.hit.id ? 'pointer' : 'default';
    this.renderTip(hit);
  }

  renderTip(hit) {
    const tip = this.tip;
    if (!hit || !this.mouse) { tip.hidden = true; return; }
    tip.replaceChildren();
    if (hit.none) {
      const l = hit.lane;
      tip.append(el('div', { class: 'tip-title' }, el('span', { class: 'mono' }, `worker ${l.pid}`)),
        el('div', { class: 'tip-row' }, l.alive ? (l.busy ? 'busy' : 'idle') : `exited · ${l.exit}`),
        el('div', { class: 'tip-row muted' }, fmtClock(hit.t)));
    } else if (hit.agg && hit.agg.n > 1) {
      const a = hit.agg;
      tip.append(el('div', { class: 'tip-title' }, `${a.n.toLocaleString()} tasks`, el('span', { class: 'muted' }, ` · worker ${hit.pid}`)));
      for (const k of OUTCOMES) if (a[k]) tip.append(el('div', { class: 'tip-row' }, el('i', { class: 'sw', dataset: { status: k } }), `${a[k].toLocaleString()} ${STATUS_LABEL[k]}`));
      tip.append(el('div', { class: 'tip-row muted' }, `${fmtClock(a.s)} – ${fmtClock(a.e)}`),
        el('div', { class: 'tip-row muted' }, `click: newest, #${a.id}`));
    } else {
      const h = hit.agg ? { id: hit.agg.id, kind: hit.agg.kind, st: hit.agg.st, s: hit.agg.s, e: hit.agg.e } : hit;
      const dur = (h.e ?? this.now()) - h.s;
      tip.append(el('div', { class: 'tip-title' }, el('span', { class: 'mono' }, `#${h.id}`), ` ${h.kind || ''}`),
        el('div', { class: 'tip-row' }, el('i', { class: 'sw', dataset: { status: h.st } }), h.died ? 'worker died' : STATUS_LABEL[h.st] || h.st, ` · ${fmtMs(dur)}`),
        el('div', { class: 'tip-row muted' }, `worker ${hit.pid} · ${fmtClock(h.s)}`));
    }
    tip.hidden = false;
    const box = this.canvas.parentElement.getBoundingClientRect();
    const tw = tip.offsetWidth, th = tip.offsetHeight;
    let x = this.mouse.x + 14, y = this.mouse.y + 14;
    if (x + tw > box.width) x = this.mouse.x - tw - 10;
    if (y + th > this.cssH + 30) y = this.mouse.y - th - 10;
    tip.style.transform = `translate(${Math.max(0, x)}px, ${Math.max(0, y)}px)`;
  }
}

function roundRect(ctx, x, y, w, h, r) {
  r = Math.min(r, w / 2, h / 2);
  ctx.beginPath();
  ctx.roundRect ? ctx.roundRect(x, y, w, h, r) : ctx.rect(x, y, w, h);
}

function tri(ctx, x, y) {
  ctx.beginPath(); ctx.moveTo(x - 4, y - 1); ctx.lineTo(x + 4, y - 1); ctx.lineTo(x, y + 5); ctx.closePath(); ctx.fill();
}

