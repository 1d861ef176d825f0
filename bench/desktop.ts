// `npm run bench:desktop`: the desktop's responsiveness while a local generation runs, then the
// gallery with 10,000 images (bench/desktop-gallery.ts).
//
// Engine lag: the real renderer in Debian's Chromium through the browser host, with the engine
// generating on the fixture model in its worker thread. Reported: the renderer's main-thread lag
// (a 10 ms timer's lateness in the page), and the host bridge's round trip for a trivial IPC call.
// References measured in the same run: the same figures with the app idle, and the event-loop lag
// when the same generation runs ON the caller's thread (what the worker/utilityProcess avoids).
//   node bench/desktop.ts [--skip-gallery] [--images 10000]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import readline from 'node:readline';
import type { Page } from 'playwright-core';
import WebSocket from 'ws';
import { ResolvedGenerateRequest, type IpcEnvelope, type LocalJob } from '@atelier/common';
import { loadModel } from '@atelier/engine';
import { launchChromium, requireChromium } from '../test/e2e/chromium.ts';

const repo = path.resolve(import.meta.dirname, '..');
const MODEL = 'atelier-fixture-turbo';
const MODEL_DIR = path.join(repo, 'native/fixtures/models', MODEL);
const REQUEST = {
  prompt: 'a lighthouse on a cliff at dusk',
  model: MODEL,
  width: 256,
  height: 256,
  steps: 4,
  guidance: 0,
  scheduler: 'lcm',
  count: 4,
  seed: 7,
} as const;
const args = process.argv.slice(2);

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { n: s.length, p50: q(0.5), p99: q(0.99), max: s.at(-1) ?? NaN };
}
type Stats = ReturnType<typeof stats>;

async function startHost(userData: string): Promise<{ url: URL; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [path.join(repo, 'src-main/host/main.ts'), '--no-cloud', '--user-data', userData],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => l.startsWith('OPEN ') && resolve(l));
    child.once('exit', (c) => reject(new Error(`host exited ${c}`)));
  });
  return {
    url: new URL(line.slice(5)),
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

async function bridgeClient(url: URL) {
  const ws = new WebSocket(`ws://${url.host}/bridge`, { origin: url.origin });
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  ws.send(JSON.stringify({ type: 'hello', token: new URLSearchParams(url.hash.slice(1)).get('token') }));
  const pending = new Map<number, (e: IpcEnvelope) => void>();
  const jobs = new Map<string, LocalJob>();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as {
      type: string;
      id: number;
      envelope: IpcEnvelope;
      name: string;
      payload: LocalJob;
    };
    if (m.type === 'result') pending.get(m.id)?.(m.envelope);
    if (m.type === 'event' && m.name === 'jobs:changed') jobs.set(m.payload.id, m.payload);
  });
  let id = 0;
  const invoke = (channel: string, input: unknown) =>
    new Promise<IpcEnvelope>((r) => {
      pending.set(++id, r);
      ws.send(JSON.stringify({ id, type: 'invoke', channel, input }));
    });
  return { ws, invoke, jobs };
}

/** Samples the page's main-thread lag (a 10 ms timer's lateness) and the bridge RTT until `done()`. */
async function sample(
  page: Page,
  client: Awaited<ReturnType<typeof bridgeClient>>,
  done: () => boolean,
): Promise<{ page: Stats; rtt: Stats }> {
  await page.evaluate(() => {
    const w = globalThis as unknown as { __lag: number[]; __lagTimer?: ReturnType<typeof setInterval> };
    w.__lag = [];
    if (w.__lagTimer) clearInterval(w.__lagTimer);
    let last = performance.now();
    w.__lagTimer = setInterval(() => {
      const now = performance.now();
      w.__lag.push(Math.max(0, now - last - 10));
      last = now;
    }, 10);
  });
  const rtts: number[] = [];
  while (!done()) {
    const t = performance.now();
    await client.invoke('app:info', {});
    rtts.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 10));
  }
  const lags = await page.evaluate(() => (globalThis as unknown as { __lag: number[] }).__lag);
  return { page: stats(lags), rtt: stats(rtts) };
}

/** Reference: the same generation on this thread, with Node's event-loop delay histogram. */
async function sameThreadLag(): Promise<Stats & { ms: number }> {
  const model = await loadModel({ modelDir: MODEL_DIR, id: MODEL });
  const req = ResolvedGenerateRequest.parse({ ...REQUEST, negativePrompt: '' });
  await model.generate({ ...req, count: 1, steps: 1 }); // warm-up, as the host's model is warm after its first job
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t = performance.now();
  await model.generate(req);
  const ms = performance.now() - t;
  h.disable();
  await model.dispose();
  const toMs = (ns: number) => ns / 1e6;
  return { n: h.count, p50: toMs(h.percentile(50)), p99: toMs(h.percentile(99)), max: toMs(h.max), ms };
}

async function engineLag() {
  if (!existsSync(MODEL_DIR)) throw new Error(`fixture model missing: run \`npm run models:fixture\` (${MODEL_DIR})`);
  requireChromium();
  const userData = mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-desktop-'));
  const browserDir = mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-chromium-'));
  const host = await startHost(userData);
  const context = await launchChromium(browserDir);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(host.url.toString());
    await page.getByLabel('Prompt', { exact: true }).waitFor();
    const client = await bridgeClient(host.url);
    const run = async () => {
      const r = await client.invoke('jobs:submit', { ...REQUEST, target: 'local' });
      if (!r.ok) throw new Error(`submit failed: ${r.error.code} ${r.error.message}`);
      const jobId = (r.value as { jobs: LocalJob[] }).jobs[0]!.id;
      return () => ['succeeded', 'failed', 'canceled'].includes(client.jobs.get(jobId)?.state ?? '');
    };
    // Warm-up job: loads the model in the engine thread, so the measured job is steady state.
    const warm = await run();
    while (!warm()) await new Promise((r) => setTimeout(r, 20));
    const idleUntil = performance.now() + 3000;
    const idle = await sample(page, client, () => performance.now() > idleUntil);
    const t = performance.now();
    const busy = await sample(page, client, await run());
    const genMs = performance.now() - t;
    client.ws.close();
    return { idle, busy, genMs };
  } finally {
    await context.close();
    await host.stop();
    rmSync(userData, { recursive: true, force: true });
    rmSync(browserDir, { recursive: true, force: true });
  }
}

const f = (x: number) => `${x.toFixed(1)} ms`;
const r = await engineLag();
const ref = await sameThreadLag();
console.log(
  `Engine lag: ${REQUEST.count}× ${REQUEST.width}² × ${REQUEST.steps} steps on ${MODEL} (CPU), generation ${f(r.genMs)} in the host's engine thread`,
);
console.log(
  `  renderer main-thread lag p99   idle ${f(r.idle.page.p99)}   generating ${f(r.busy.page.p99)}   ratio ${(r.busy.page.p99 / Math.max(r.idle.page.p99, 0.1)).toFixed(2)}×   (goal ≤ 20 ms; max ${f(r.busy.page.max)}, n=${r.busy.page.n})`,
);
console.log(
  `  host bridge round trip p99     idle ${f(r.idle.rtt.p99)}   generating ${f(r.busy.rtt.p99)}   ratio ${(r.busy.rtt.p99 / Math.max(r.idle.rtt.p99, 0.1)).toFixed(2)}×   (p50 ${f(r.busy.rtt.p50)}, n=${r.busy.rtt.n})`,
);
console.log(
  `  reference: same generation ON the event loop: lag p99 ${f(ref.p99)}, max ${f(ref.max)} (generation ${f(ref.ms)}) — off-thread p99 is ${(ref.p99 / Math.max(r.busy.rtt.p99, 0.1)).toFixed(1)}× lower`,
);

if (!args.includes('--skip-gallery') && existsSync(path.join(repo, 'bench/desktop-gallery.ts'))) {
  const i = args.indexOf('--images');
  const { runGalleryBench, printGalleryBench } = await import('./desktop-gallery.ts');
  printGalleryBench(await runGalleryBench(i >= 0 ? { images: Number(args[i + 1]) } : {}));
}
