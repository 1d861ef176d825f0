import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bestProvider, detectProviders, type ProviderReport } from './detect.ts';
import { sessionOptions } from './session.ts';
import { physicalCores } from './threads.ts';

const tmpDirs: string[] = [];
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

describe('execution providers', () => {
  it('reports CPU usable here and says why each GPU provider is not', async () => {
    const reports = await detectProviders();
    expect(reports.map((r) => r.name)).toEqual(['cuda', 'dml', 'coreml', 'cpu']);
    const cpu = reports.find((r) => r.name === 'cpu')!;
    expect(cpu).toMatchObject({ usable: true, gpu: false });
    for (const r of reports.filter((x) => x.name !== 'cpu')) {
      expect(r.gpu).toBe(true);
      if (!r.usable) expect(r.reason.length).toBeGreaterThan(10);
    }
    expect(reports.find((r) => r.name === 'dml')!.reason).toMatch(/Windows/);
    const gpuUsable = reports.some((r) => r.gpu && r.usable);
    expect(bestProvider(reports)?.name).toBe(gpuUsable ? reports.find((r) => r.gpu && r.usable)!.name : 'cpu');
  });

  it('walks the CUDA checks in order and names the fix', async () => {
    const bin = await mkdtemp(path.join(os.tmpdir(), 'atelier-ortbin-'));
    tmpDirs.push(bin);
    const backends = [
      { name: 'cpu', bundled: true },
      { name: 'cuda', bundled: false },
    ];
    const env = { libraryPath: [], cudaVisibleDevices: undefined, threads: undefined };
    const base = { platform: 'linux' as const, backends, ortBinDir: bin, environment: env, probe: false };
    const cuda = async (o: Partial<Parameters<typeof detectProviders>[0]>) =>
      (await detectProviders({ ...base, ...o })).find((r) => r.name === 'cuda')!;

    expect((await cuda({})).reason).toMatch(
      /CUDA provider not installed: add it with `node node_modules\/onnxruntime-node\/script\/install --onnxruntime-node-install-cuda=v12`/,
    );
    await writeFile(path.join(bin, 'libonnxruntime_providers_cuda.so'), '');
    expect((await cuda({ hasNvidiaGpu: () => false })).reason).toMatch(/no NVIDIA GPU/);
    expect((await cuda({ hasNvidiaGpu: () => true, environment: { ...env, cudaVisibleDevices: '' } })).reason).toMatch(
      /CUDA_VISIBLE_DEVICES/,
    );
    const missingCudnn = await cuda({ hasNvidiaGpu: () => true, findLibrary: (re) => !re.source.includes('cudnn') });
    expect(missingCudnn).toMatchObject({ usable: false });
    expect(missingCudnn.reason).toMatch(/cuDNN 9/);
    const ok = await cuda({ hasNvidiaGpu: () => true, findLibrary: () => true });
    expect(ok).toMatchObject({ usable: true, gpu: true });
    expect((await cuda({ platform: 'darwin' })).reason).toMatch(/Linux only/);
  });

  it('prefers a usable GPU over the CPU', () => {
    const r = (name: ProviderReport['name'], usable: boolean, gpu: boolean): ProviderReport => ({
      name,
      label: name,
      usable,
      gpu,
      reason: '',
    });
    expect(bestProvider([r('cuda', false, true), r('cpu', true, false)])?.name).toBe('cpu');
    expect(bestProvider([r('cuda', true, true), r('cpu', true, false)])?.name).toBe('cuda');
    expect(bestProvider([r('cpu', false, false)])).toBeUndefined();
  });

  it('counts physical cores, not hyper-threads', () => {
    const block = (proc: number, phys: number, core: number) =>
      `processor\t: ${proc}\nphysical id\t: ${phys}\ncore id\t\t: ${core}\n`;
    const ht = [block(0, 0, 0), block(1, 0, 0), block(2, 0, 1), block(3, 0, 1)].join('\n');
    expect(physicalCores(ht)).toBe(Math.min(2, os.availableParallelism()));
    expect(physicalCores('processor : 0\n')).toBe(os.availableParallelism());
  });
});

describe('session options and the optimised-model cache', () => {
  it('sets threads, sequential execution and full optimisation explicitly', () => {
    expect(sessionOptions({ provider: 'cpu', threads: 3 })).toMatchObject({
      executionProviders: ['cpu'],
      intraOpNumThreads: 3,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      extra: { session: { 'intra_op.allow_spinning': '0' } },
    });
  });
});
