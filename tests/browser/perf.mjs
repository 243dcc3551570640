#!/usr/bin/env node
// How smooth the dashboard stays under load: not part of `make browser`.
//
//   TASKPOOLD=$PWD/bin/taskpoold node tests/browser/perf.mjs [--conns 12] [--seconds 15]
//       [--workers 2] [--max-tasks 0] [--window 120000] [--at SELECTOR] [--profile] [--trace] [--shot FILE.png]
//
// Starts taskpoold (127.0.0.1:0, temporary database), opens the dashboard in
// headless Chromium at 1280x800, drives wrk with bench/post.lua, and after a
// warm-up counts animation frames (fps, worst gap between two frames) and long
// tasks (PerformanceObserver) while the daemon and wrk run on the same box.
// --profile adds the page's heaviest functions by self time, --trace the
// browser's time by kind of work (Paint, Layout...), --shot a full-page
// screenshot at the end; --at scrolls that element to the top first.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TASKPOOLD = path.resolve(process.env.TASKPOOLD || path.join(ROOT, 'bin', 'taskpoold'));
const opt = { conns: 12, seconds: 15, workers: 2, 'max-tasks': 0, window: 120000, warmup: 6, profile: false, trace: false, css: '', shot: '', at: '' };
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option ${process.argv[i]}`);
  opt[k] = typeof opt[k] === 'boolean' ? true : typeof opt[k] === 'string' ? process.argv[++i] : Number(process.argv[++i]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskpool-perf-'));
const kids = [];
let browser = null;

async function main() {
  const args = ['--listen', '127.0.0.1:0', '--db', path.join(dir, 'tasks.db'), '--workers', String(opt.workers),
    '--web', path.join(ROOT, 'web'), '--shutdown-grace', '1'];
  if (opt['max-tasks']) args.push('--max-tasks-per-worker', String(opt['max-tasks']));
  const d = spawn(TASKPOOLD, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  kids.push(d);
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no "listening on" line')), 10_000);
    d.stderr.on('data', (c) => { log += c; const m = log.match(/listening on [0-9.]+:(\d+)/); if (m) { clearTimeout(t); resolve(m[1]); } });
  });
  const base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true, timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.addInitScript((w) => localStorage.setItem('taskpool.window', String(w)), opt.window);
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
  if (opt.css) await page.addStyleTag({ content: opt.css });
  if (opt.at) await page.$eval(opt.at, (e) => e.scrollIntoView({ block: 'start' }));

  const wrk = spawn('wrk', ['-t1', `-c${opt.conns}`, `-d${opt.warmup + opt.seconds + 2}s`, '-s', path.join(ROOT, 'bench', 'post.lua'), base],
    { stdio: 'ignore' });
  kids.push(wrk);
  await sleep(opt.warmup * 1000);

  const cdp = opt.profile ? await page.context().newCDPSession(page) : null;
  if (cdp) { await cdp.send('Profiler.enable'); await cdp.send('Profiler.setSamplingInterval', { interval: 200 }); await cdp.send('Profiler.start'); }
  let traceEvents = null;
  if (opt.trace) {
    traceEvents = [];
    const tc = await page.context().newCDPSession(page);
    tc.on('Tracing.dataCollected', (e) => traceEvents.push(...e.value));
    await tc.send('Tracing.start', { categories: 'devtools.timeline,disabled-by-default-devtools.timeline', transferMode: 'ReportEvents' });
    traceEvents.stop = async () => { const done = new Promise((r) => tc.once('Tracing.tracingComplete', r)); await tc.send('Tracing.end'); await done; };
  }
  const done0 = await (await fetch(`${base}/api/v1/stats`)).json();
  const t0 = Date.now();
  const r = await page.evaluate((ms) => new Promise((resolve) => {
    let frames = 0, worst = 0, prev = 0, over50 = 0;
    let longN = 0, longMs = 0, longMax = 0;
    const po = new PerformanceObserver((l) => { for (const e of l.getEntries()) { longN++; longMs += e.duration; longMax = Math.max(longMax, e.duration); } });
    po.observe({ entryTypes: ['longtask'] });
    const end = performance.now() + ms;
    const tick = (t) => {
      if (prev) { const g = t - prev; worst = Math.max(worst, g); if (g > 50) over50++; }
      prev = t; frames++;
      if (t < end) requestAnimationFrame(tick);
      else { po.disconnect(); resolve({ frames, worst, over50, longN, longMs, longMax, ms }); }
    };
    requestAnimationFrame(tick);
  }), opt.seconds * 1000);
  const secs = (Date.now() - t0) / 1000;
  const done1 = await (await fetch(`${base}/api/v1/stats`)).json();
  const fin = (s) => s.counts.succeeded + s.counts.failed + s.counts.cancelled + s.counts.timed_out;
  let top = [];
  if (cdp) {
    const { profile } = await cdp.send('Profiler.stop');
    const self = new Map();
    const dt = profile.timeDeltas || [];
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    profile.samples.forEach((id, i) => {
      const n = byId.get(id);
      const f = n.callFrame;
      const key = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
      self.set(key, (self.get(key) || 0) + (dt[i] || 0) / 1000);
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${(100 * v / total).toFixed(1)}% ${k}`);
  }
  if (traceEvents) {
    await traceEvents.stop();
    const sum = new Map();
    for (const e of traceEvents) if (e.ph === 'X' && e.dur) sum.set(e.name, (sum.get(e.name) || 0) + e.dur / 1000);
    top.push(...[...sum.entries()].sort((a, b) => b[1] - a[1]).slice(0, 16).map(([k, v]) => `${Math.round(v)} ms ${k}`));
    // what the long tasks were made of
    const xs = traceEvents.filter((e) => e.ph === 'X' && e.dur);
    for (const lt of xs.filter((e) => e.name === 'RunTask' && e.dur > 50_000)) {
      const inner = xs.filter((e) => e.tid === lt.tid && e.pid === lt.pid && e !== lt && e.ts >= lt.ts && e.ts + e.dur <= lt.ts + lt.dur && e.dur > 5000);
      const what = inner.map((e) => `${e.name}${e.args && e.args.data && e.args.data.functionName ? `(${e.args.data.functionName}:${e.args.data.lineNumber})` : ''} ${Math.round(e.dur / 1000)}`);
      top.push(`long task ${Math.round(lt.dur / 1000)} ms: ${what.slice(0, 8).join(', ')}`);
    }
  }
  if (opt.shot) await page.screenshot({ path: opt.shot, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1300 } });
  const pool = await (await fetch(`${base}/api/v1/workers`)).json();
  const cards = await page.$$eval('#workers .worker', (e) => e.length);
  console.log(JSON.stringify({
    tasks_per_s: Math.round((fin(done1) - fin(done0)) / secs),
    fps: +(r.frames / (r.ms / 1000)).toFixed(1), worst_frame_gap_ms: Math.round(r.worst), gaps_over_50ms: r.over50,
    long_tasks: r.longN, long_task_ms: Math.round(r.longMs), longest_task_ms: Math.round(r.longMax),
    cards, live_workers: pool.workers.length, errors,
  }));
  for (const line of top) console.log(`  ${line}`);
}

try { await main(); } finally {
  if (browser) await browser.close().catch(() => {});
  for (const k of kids) { try { k.kill('SIGTERM'); } catch { /* gone */ } }
  await sleep(500);
  fs.rmSync(dir, { recursive: true, force: true });
}
