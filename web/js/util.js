// Small helpers shared by the dashboard modules: DOM building and formatting.

export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'];
export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);
export const STATUS_LABEL = {
  queued: 'queued', running: 'running', succeeded: 'succeeded',
  failed: 'failed', cancelled: 'cancelled', timed_out: 'timed out',
};

// el('div', {class: 'x', dataset: {id: 1}, onclick: fn}, child, 'text', ...)
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export function chip(status) {
  return el('span', { class: 'chip', dataset: { status } }, STATUS_LABEL[status] || status);
}

export function setChip(node, status) {
  if (node.dataset.status === status) return;
  node.dataset.status = status;
  node.textContent = STATUS_LABEL[status] || status;
}

// RFC 3339 -> Unix ms (null stays null).
export function ts(iso) {
  if (!iso) return null;
  const v = Date.parse(iso);
  return Number.isNaN(v) ? null : v;
}

const nf = new Intl.NumberFormat(undefined);
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
export function fmtInt(n) { return n === null || n === undefined ? '–' : nf.format(n); }

export function fmtRate(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (n >= 100) return nf.format(Math.round(n));
  if (n >= 10) return nf1.format(n);
  return n.toFixed(n === 0 ? 0 : 2);
}

// Milliseconds as a short duration: 0.42 ms, 12 ms, 1.25 s, 3m 04s, 2h 05m.
export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms === 0) return '0 ms';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return fmtAge(ms / 1000);
}

// Seconds as an age: 45s, 3m 12s, 2h 05m, 3d 4h.
export function fmtAge(sec) {
  if (sec === null || sec === undefined || Number.isNaN(sec)) return '–';
  sec = Math.max(0, Math.floor(sec));
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60), s = sec % 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, '0')}s`;
  const h = Math.floor(m / 60), mm = m % 60;
  if (h < 24) return `${h}h ${String(mm).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

export function fmtAgo(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return '–';
  const s = (now - ms) / 1000;
  if (s < 1) return 'just now';
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return dateFmt.format(ms);
}

export function fmtKb(kb) {
  if (kb === null || kb === undefined) return '–';
  if (kb < 1024) return `${kb} KB`;
  if (kb < 1024 * 1024) return `${(kb / 1024).toFixed(kb < 10240 ? 1 : 0)} MB`;
  return `${(kb / 1048576).toFixed(2)} GB`;
}

// Local wall-clock time with milliseconds: 18:42:03.127
export function fmtClock(ms) {
  if (ms === null || ms === undefined) return '–';
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function fmtDateTime(ms) {
  if (ms === null || ms === undefined) return '–';
  return `${dateFmt.format(ms)} ${fmtClock(ms)}`;
}

export function signalName(n) {
  const names = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE',
    9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM' };
  return names[n] || `signal ${n}`;
}

// Why a worker left, in words, from a worker event or a GET /api/v1/timeline
// worker.  reason "killed": the pool killed it (its task timed out or was
// cancelled: lastStatus says which); "died": an unexpected death.
export function exitLabel(w, lastStatus) {
  if (w.reason === 'retired') return w.tasks_done === undefined || w.tasks_done === null ? 'retired' : `retired after ${fmtInt(w.tasks_done)} tasks`;
  if (w.reason === 'shutdown') return 'shut down';
  if (w.reason === 'killed') return `killed: ${lastStatus === 'timed_out' ? 'task timed out' : lastStatus === 'cancelled' ? 'task cancelled' : 'by taskpoold'}`;
  if (w.exit_signal !== null && w.exit_signal !== undefined) return `died: killed by ${signalName(w.exit_signal)}`;
  if (w.exit_code !== null && w.exit_code !== undefined) return `died: exit code ${w.exit_code}`;
  return w.reason || 'exited';
}

// A window of seconds in words: "last 10 s", "last minute", "last 5 min".
export function windowLabel(sec) {
  if (sec === 60) return 'last minute';
  return sec > 60 && sec % 60 === 0 ? `last ${sec / 60} min` : `last ${sec} s`;
}

// Reads a CSS custom property from :root (for canvas colours).
export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
