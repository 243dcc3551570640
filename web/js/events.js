// A Server-Sent Events client on fetch() + ReadableStream.  EventSource cannot
// send an Authorization header, so this one parses text/event-stream itself
// (WHATWG HTML "event stream interpretation"): id:, event:, data: (joined with
// "\n"), retry:, comment lines, CRLF / CR / LF line ends.  It reconnects with
// a Last-Event-ID header and exponential back-off with jitter, restarts a
// connection that has been silent for longer than the server's ping interval
// allows, and asks for the token on a 401.

import { authHeaders, currentToken, needToken } from './api.js';

const SILENCE_MS = 45000;      // the server pings every 15 s
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 15000;

export class EventStream {
  // onEvent({type, data, id}) is called for every dispatched event, in order.
  // onState(state, detail) with state 'connecting' | 'open' | 'retrying'.
  constructor(url, { onEvent, onState }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.lastId = null;        // last event ID buffer; sent as Last-Event-ID
    this.retryMs = null;       // server's retry: hint
    this.stopped = true;
    this.ctrl = null;
    this.lastSeen = 0;
    this.failures = 0;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.watchdog = setInterval(() => {
      if (this.ctrl && this.lastSeen && Date.now() - this.lastSeen > SILENCE_MS) this.ctrl.abort();
    }, 5000);
    this._loop();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    if (this.ctrl) this.ctrl.abort();
  }

  // Drops the current connection and reconnects at once (keeps Last-Event-ID).
  restart() {
    this.failures = 0;
    if (this.ctrl) this.ctrl.abort();
  }

  async _loop() {
    while (!this.stopped) {
      this.ctrl = new AbortController();
      const headers = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache', ...authHeaders() };
      if (this.lastId !== null && this.lastId !== '') headers['Last-Event-ID'] = this.lastId;
      const used = currentToken();
      let delivered = false;
      this.onState('connecting');
      try {
        const res = await fetch(this.url, { headers, signal: this.ctrl.signal, cache: 'no-store' });
        if (res.status === 401) {
          await res.body?.cancel().catch(() => {});
          await needToken(used);
          continue;
        }
        const type = res.headers.get('Content-Type') || '';
        if (!res.ok || !res.body || !type.startsWith('text/event-stream')) {
          await res.body?.cancel().catch(() => {});
          throw new Error(`HTTP ${res.status}`);
        }
        this.lastSeen = Date.now();
        this.onState('open');
        delivered = await this._read(res.body);
      } catch (e) {
        // network error, abort by the watchdog or restart(): all mean "reconnect"
      }
      if (this.stopped) return;
      this.failures = delivered ? 0 : this.failures + 1;
      const base = this.retryMs ?? BACKOFF_MIN;
      const delay = Math.min(BACKOFF_MAX, base * 2 ** Math.min(this.failures, 8)) * (0.8 + Math.random() * 0.4);
      this.onState('retrying', { delay, failures: this.failures });
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  // Reads one connection to its end.  Returns true if any event was dispatched.
  async _read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let data = [];
    let type = '';
    let delivered = false;
    let first = true;
    const line = (s) => {
      if (s === '') {                                   // blank line: dispatch
        if (data.length) {
          delivered = true;
          this.onEvent({ type: type || 'message', data: data.join('\n'), id: this.lastId });
        }
        data = [];
        type = '';
        return;
      }
      if (s.charCodeAt(0) === 58) return;               // ':' comment (ping)
      const i = s.indexOf(':');
      const field = i < 0 ? s : s.slice(0, i);
      let value = i < 0 ? '' : s.slice(i + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') type = value;
      else if (field === 'id') { if (!value.includes('\0')) this.lastId = value; }
      else if (field === 'retry') { if (/^\d+$/.test(value)) this.retryMs = Number(value); }
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.lastSeen = Date.now();
        buf += value;
        if (first) { if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1); first = false; }
        let pos = 0;
        for (;;) {
          let j = pos;
          const n = buf.length;
          while (j < n) { const c = buf.charCodeAt(j); if (c === 10 || c === 13) break; j++; }
          if (j >= n) break;
          let next = j + 1;
          if (buf.charCodeAt(j) === 13) {
            if (next === n) break;                       // CR at chunk end: LF may follow
            if (buf.charCodeAt(next) === 10) next++;
          }
          line(buf.slice(pos, j));
          pos = next;
        }
        if (pos) buf = buf.slice(pos);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    return delivered;
  }
}
