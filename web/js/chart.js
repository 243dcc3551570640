// The small chart of /api/v1/stats history: tasks finished per second (area,
// left axis) and queue depth (line, right axis) over the last five minutes.
// Hand-drawn on a canvas: two series of at most 300 points do not need a
// charting library.

import { cssVar, fmtClock, fmtInt, el } from './util.js';

export class HistoryChart {
  constructor(canvas, tip) {
    this.canvas = canvas;
    this.tip = tip;
    this.ctx = canvas.getContext('2d');
    this.data = [];
    this.mouseX = null;
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw());
    canvas.addEventListener('mousemove', (e) => { this.mouseX = e.clientX - canvas.getBoundingClientRect().left; this.draw(); });
    canvas.addEventListener('mouseleave', () => { this.mouseX = null; this.draw(); });
  }

  set(history) { this.data = Array.isArray(history) ? history : []; this.draw(); }

  draw() {
    const box = this.canvas.parentElement;
    const W = box.clientWidth, H = box.clientHeight;
    if (!W || !H) return;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(W * dpr) || this.canvas.height !== Math.round(H * dpr)) {
      this.canvas.width = Math.round(W * dpr); this.canvas.height = Math.round(H * dpr);
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const cRate = cssVar('--chart-rate'), cQueue = cssVar('--chart-queue'), grid = cssVar('--grid'), muted = cssVar('--muted');
    const pad = { l: 34, r: 34, t: 6, b: 18 };
    const pw = W - pad.l - pad.r, ph = H - pad.t - pad.b;
    const d = this.data.filter((p) => p && typeof p.t === 'number');
    // seconds shown: the history there is, between one and five minutes
    const span = Math.max(60, Math.min(300, Math.ceil(d.length / 60) * 60));
    const tEnd = d.length ? d[d.length - 1].t : Date.now();
    const tStart = tEnd - (span - 1) * 1000;
    const x = (t) => pad.l + ((t - tStart) / ((span - 1) * 1000)) * pw;
    const maxRate = niceMax(Math.max(1, ...d.map((p) => p.finished || 0)));
    const maxQ = niceMax(Math.max(1, ...d.map((p) => p.queue_depth || 0)));
    const yR = (v) => pad.t + ph - (v / maxRate) * ph;
    const yQ = (v) => pad.t + ph - (v / maxQ) * ph;

    ctx.font = '10px ui-sans-serif, system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (let k = 0; k <= 2; k++) {
      const yy = pad.t + (ph * k) / 2;
      ctx.fillStyle = grid; ctx.fillRect(pad.l, Math.round(yy), pw, 1);
      ctx.fillStyle = cRate; ctx.textAlign = 'right';
      ctx.fillText(short(maxRate * (1 - k / 2)), pad.l - 6, yy);
      ctx.fillStyle = cQueue; ctx.textAlign = 'left';
      ctx.fillText(short(maxQ * (1 - k / 2)), pad.l + pw + 6, yy);
    }
    ctx.fillStyle = muted; ctx.textBaseline = 'top';
    ctx.textAlign = 'left'; ctx.fillText(`−${ago(span)}`, pad.l, pad.t + ph + 5);
    ctx.textAlign = 'center'; ctx.fillText(`−${ago(Math.round(span / 2))}`, pad.l + pw / 2, pad.t + ph + 5);
    if (this.onSpan) this.onSpan(span);
    ctx.textAlign = 'right'; ctx.fillText('now', pad.l + pw, pad.t + ph + 5);
    if (!d.length) return;
    ctx.save();
    ctx.beginPath(); ctx.rect(pad.l, 0, pw + 1, H); ctx.clip();

    // throughput area
    ctx.beginPath();
    ctx.moveTo(x(d[0].t), yR(0));
    for (const p of d) ctx.lineTo(x(p.t), yR(p.finished || 0));
    ctx.lineTo(x(d[d.length - 1].t), yR(0));
    ctx.closePath();
    const grad = ctx.createLinearGradient(0, pad.t, 0, pad.t + ph);
    grad.addColorStop(0, withAlpha(cRate, 0.35)); grad.addColorStop(1, withAlpha(cRate, 0.03));
    ctx.fillStyle = grad; ctx.fill();
    ctx.beginPath();
    d.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.t), yR(p.finished || 0)));
    ctx.strokeStyle = cRate; ctx.lineWidth = 1.5; ctx.lineJoin = 'round'; ctx.stroke();

    // queue depth line
    ctx.beginPath();
    d.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.t), yQ(p.queue_depth || 0)));
    ctx.strokeStyle = cQueue; ctx.lineWidth = 1.5; ctx.setLineDash([4, 3]); ctx.stroke(); ctx.setLineDash([]);
    ctx.restore();

    // hover
    if (this.mouseX !== null && this.mouseX >= pad.l && this.mouseX <= pad.l + pw) {
      const t = tStart + ((this.mouseX - pad.l) / pw) * (span - 1) * 1000;
      let best = d[0];
      for (const p of d) if (Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
      const bx = x(best.t);
      ctx.fillStyle = muted; ctx.fillRect(Math.round(bx), pad.t, 1, ph);
      ctx.fillStyle = cRate; ctx.beginPath(); ctx.arc(bx, yR(best.finished || 0), 3, 0, 7); ctx.fill();
      ctx.fillStyle = cQueue; ctx.beginPath(); ctx.arc(bx, yQ(best.queue_depth || 0), 3, 0, 7); ctx.fill();
      this.tip.replaceChildren(
        el('div', { class: 'tip-title' }, fmtClock(best.t).slice(0, 8)),
        el('div', { class: 'tip-row' }, el('i', { class: 'sw sw-rate' }), `${fmtInt(best.finished)} finished`),
        el('div', { class: 'tip-row' }, el('i', { class: 'sw sw-sub' }), `${fmtInt(best.submitted)} submitted`),
        el('div', { class: 'tip-row' }, el('i', { class: 'sw sw-queue' }), `${fmtInt(best.queue_depth)} queued`));
      this.tip.hidden = false;
      const tw = this.tip.offsetWidth;
      const tx = bx + 10 + tw > W ? bx - tw - 10 : bx + 10;
      this.tip.style.transform = `translate(${tx}px, 4px)`;
    } else this.tip.hidden = true;
  }
}

function ago(sec) {
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60), s = sec % 60;
  return s ? `${m}m${s}s` : `${m}m`;
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function short(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(1));
}

// "#rrggbb" or "rgb(...)" -> rgba with alpha.
function withAlpha(color, a) {
  if (color.startsWith('#')) {
    let h = color.slice(1);
    if (h.length === 3) h = h.split('').map((c) => c + c).join('');
    const n = parseInt(h, 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }
  const m = color.match(/rgba?\(([^)]+)\)/);
  if (m) { const [r, g, b] = m[1].split(',').map((s) => s.trim()); return `rgba(${r}, ${g}, ${b}, ${a})`; }
  return color;
}
