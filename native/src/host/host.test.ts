import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@atelier/common';
import { FIXTURES, writeFixtureModel } from '../onnx-build/sd-fixture.ts';
import { readPngMetadata } from '../pipeline/metadata.ts';
import { createModelStore, type ModelStore } from '../store/store.ts';
import { createEngineHost, spawnWorkerThread, type EngineHost, type EngineProcess } from './host.ts';
import type { HostReply, HostRequest } from './protocol.ts';

const CLIP_DIR = path.resolve(import.meta.dirname, '../../fixtures/clip');
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let root: string;
let store: ModelStore;
const hosts: EngineHost[] = [];
const host = (o: Parameters<typeof createEngineHost>[0] = {}) => {
  const h = createEngineHost({ store, threads: 1, ...o });
  hosts.push(h);
  return h;
};
const req = { prompt: 'a lighthouse at dusk', width: 64, height: 64, steps: 6, guidance: 7.5, seed: 99 } as const;

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'atelier-host-test-'));
  for (const spec of FIXTURES) writeFixtureModel(path.join(root, 'fixtures', spec.id), spec, CLIP_DIR);
  store = createModelStore({
    modelsDir: path.join(root, 'models'),
    bundledDirs: [],
    fixtureDirs: [path.join(root, 'fixtures')],
  });
});
afterAll(async () => {
  for (const h of hosts) await h.close();
  rmSync(root, { recursive: true, force: true });
});

describe('engine host (worker thread)', () => {
  it('generates off-thread while the calling event loop keeps running', async () => {
    const h = host();
    await h.load(); // the default model: the sd fixture
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const progress: { step: number; ticksSoFar: number }[] = [];
    try {
      const result = await h.generate(
        undefined,
        { ...req, count: 2 },
        {
          onProgress: (e) => progress.push({ step: e.step, ticksSoFar: ticks }),
        },
      );
      expect(result.request).toMatchObject({ model: 'atelier-fixture-sd', seed: 99 });
      expect(result.images.map((i) => i.seed)).toEqual([99, 100]);
      for (const img of result.images) {
        expect([...img.png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
        expect(sha(img.png)).toBe(img.sha256);
        expect(readPngMetadata(img.png)).toMatchObject({ seed: img.seed, model: { name: 'atelier-fixture-sd' } });
      }
      // The image records the same model hash the store lists.
      const entry = (await store.list()).find((m) => m.id === 'atelier-fixture-sd')!;
      expect(readPngMetadata(result.images[0]!.png)?.model.hash).toBe(entry.sha256);
    } finally {
      clearInterval(timer);
      lag.disable();
    }
    expect(progress).toHaveLength(12);
    expect(progress.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
    // The timer kept firing while the engine worked (no threshold on how often: machines vary).
    expect(ticks).toBeGreaterThan(0);
    expect(progress.at(-1)!.ticksSoFar).toBeGreaterThan(0);
    console.info(
      `event-loop lag during generation: p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, ${ticks} timer ticks`,
    );
  });

  it('cancels across the thread boundary and keeps serving afterwards', async () => {
    // Latched, not raced: the engine thread holds after its 2nd progress event until the cancel is on its way.
    const gate = new SharedArrayBuffer(4);
    const h = host({
      spawn: () =>
        spawnWorkerThread(new URL('../../test/gated-engine-worker.ts', import.meta.url), {
          workerData: { gate, gateAt: 2 },
        }),
    });
    const ac = new AbortController();
    let seen = 0;
    const e = await h
      .generate(
        undefined,
        { ...req, steps: 30 },
        {
          signal: ac.signal,
          onProgress: () => {
            seen++;
            if (seen === 2) {
              ac.abort();
              const latch = new Int32Array(gate);
              Atomics.store(latch, 0, 1);
              Atomics.notify(latch, 0);
            }
          },
        },
      )
      .catch((x: unknown) => x);
    expect(AppError.is(e, 'CANCELED')).toBe(true);
    // Stopped within a step of the cancel, far from the 30 steps asked for.
    expect(seen).toBeLessThanOrEqual(4);
    const after = await h.generate('atelier-fixture-turbo', { ...req, steps: 2, guidance: 0, scheduler: 'lcm' });
    expect(after.images).toHaveLength(1);
  });

  it('refuses a job over its memory limit before it starts, and keeps serving; a job that fits runs', async () => {
    // A 2048×2048 batch of 4: decoded whole, the fixture VAE's attention alone would need ~34 GB.
    const h = host({ memoryLimitBytes: 200e6 });
    const steps: number[] = [];
    const err = await h
      .generate(
        undefined,
        { ...req, width: 2048, height: 2048, count: 4, steps: 1 },
        { onProgress: (e) => steps.push(e.step), memoryLimitBytes: 50e6 },
      )
      .catch((e: unknown) => e);
    expect(AppError.is(err, 'ENGINE_MEMORY_INSUFFICIENT')).toBe(true);
    expect((err as AppError).details).toMatchObject({ availableBytes: 50e6 });
    expect(steps).toEqual([]);
    // The same engine process goes on: 1024² under the host's 200 MB limit is decoded in tiles.
    const r = await h.generate(undefined, { ...req, width: 1024, height: 1024, steps: 1 });
    expect(r.timings.vaeTiles).toBeGreaterThan(1);
    expect(r.memory.requiredBytes).toBeLessThanOrEqual(200e6);
    expect([r.images[0]!.width, r.images[0]!.height]).toEqual([1024, 1024]);
  });

  it('turns failures in the engine into the right AppError', async () => {
    const h = host();
    const broken = path.join(root, 'broken-model');
    cpSync(path.join(root, 'fixtures', 'atelier-fixture-sd'), broken, { recursive: true });
    rmSync(path.join(broken, 'vae_decoder', 'model.onnx'));
    const invalid = await h.generate(broken, req).catch((x: unknown) => x);
    expect(AppError.is(invalid, 'ENGINE_MODEL_INVALID')).toBe(true);
    expect((invalid as AppError).message).toMatch(/vae_decoder\/model\.onnx/);

    await expect(h.generate('no-such-model', req)).rejects.toMatchObject({ code: 'ENGINE_MODEL_NOT_FOUND' });
    await expect(h.generate(undefined, req, { provider: 'cuda' })).rejects.toMatchObject({
      code: 'ENGINE_PROVIDER_UNAVAILABLE',
    });
    await expect(h.generate(undefined, { ...req, width: 63 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('reuses the optimised graphs on the second load and renders the same bytes', async () => {
    const cacheDir = path.join(root, 'cache');
    const first = host({ cacheDir });
    const a = await first.load('atelier-fixture-sd');
    expect(a.cachedSessions).toBe(0);
    const imgA = await first.generate('atelier-fixture-sd', req);
    await first.close();
    const second = host({ cacheDir });
    const b = await second.load('atelier-fixture-sd');
    expect(b).toMatchObject({ cachedSessions: 3, hash: a.hash, id: 'atelier-fixture-sd' });
    const imgB = await second.generate('atelier-fixture-sd', req);
    expect(imgB.images[0]!.sha256).toBe(imgA.images[0]!.sha256);
    console.info(`load: first ${a.loadMs.toFixed(0)} ms (builds the cache), second ${b.loadMs.toFixed(0)} ms`);
  });
});

describe('engine host over an Electron-style parent port', () => {
  it('serves the same protocol through utilityProcess-shaped messages ({ data } events, no transfer)', async () => {
    // Electron's process.parentPort delivers `{ data }` events and copies instead of transferring.
    const { port1, port2 } = new MessageChannel();
    const electronPort = {
      postMessage: (m: unknown) => port1.postMessage(m),
      on: (_event: 'message', l: (e: { data: unknown }) => void) => port1.on('message', (data) => l({ data })),
      off: () => undefined,
    };
    const proc = process as unknown as { parentPort?: unknown };
    proc.parentPort = electronPort;
    try {
      await import('./worker.ts');
    } finally {
      delete proc.parentPort;
    }
    const spawn = (): EngineProcess => ({
      endpoint: {
        post: (m: HostRequest) => port2.postMessage(m),
        listen: (handler: (m: HostReply) => void) => {
          port2.on('message', handler);
          return () => port2.off('message', handler);
        },
      },
      onExit: () => undefined,
      terminate: async () => {
        port1.close();
        port2.close();
      },
    });
    const h = host({ spawn });
    expect((await h.providers()).find((p) => p.name === 'cpu')?.usable).toBe(true);
    const r = await h.generate(undefined, { ...req, steps: 2 });
    expect([...r.images[0]!.png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    await expect(h.generate('no-such-model', req)).rejects.toMatchObject({ code: 'ENGINE_MODEL_NOT_FOUND' });
  });
});

describe('engine process failure', () => {
  it('fails pending calls with ENGINE_FAILED when the engine dies, and starts a new one on the next call', async () => {
    let spawned = 0;
    const h = host({
      spawn: () => {
        spawned++;
        // A real worker that dies on its first message, as a native crash would.
        return spawnWorkerThread("require('node:worker_threads').parentPort.once('message', () => process.exit(3));", {
          eval: true,
        });
      },
    });
    const e = await h.providers().catch((x: unknown) => x);
    expect(AppError.is(e, 'ENGINE_FAILED')).toBe(true);
    expect((e as AppError).message).toMatch(/exited with code 3/);
    await expect(h.providers()).rejects.toMatchObject({ code: 'ENGINE_FAILED' });
    expect(spawned).toBe(2);
  });
});
