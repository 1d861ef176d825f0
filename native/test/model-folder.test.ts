import { AppError } from '@atelier/common';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, loadModel } from '../src/index.ts';
import { buildUnet, buildVaeDecoder } from '../src/onnx-build/sd-fixture.ts';
import { buildFixtures, copyModel, type Fixtures, NATIVE_DIR, renameOnnxInput, request } from './support.ts';

let fx: Fixtures;
beforeAll(() => {
  fx = buildFixtures();
});
afterAll(() => fx?.cleanup());

async function loadError(dir: string): Promise<AppError> {
  try {
    const m = await loadModel({ modelDir: dir });
    await m.dispose();
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error(`expected ${dir} to be refused`);
}

describe('model folder validation', () => {
  it('reports a folder that does not exist as ENGINE_MODEL_NOT_FOUND', async () => {
    const e = await loadError(path.join(fx.root, 'nope'));
    expect(e.code).toBe('ENGINE_MODEL_NOT_FOUND');
  });

  it('names each missing file', async () => {
    const dir = copyModel(fx.sd, fx.root, 'missing');
    unlinkSync(path.join(dir, 'unet/model.onnx'));
    unlinkSync(path.join(dir, 'tokenizer/merges.txt'));
    const e = await loadError(dir);
    expect(e.code).toBe('ENGINE_MODEL_INVALID');
    expect(e.message).toContain('missing tokenizer/merges.txt, unet/model.onnx');
  });

  it('names the UNet when its external weight file is missing', async () => {
    const dir = copyModel(fx.sd, fx.root, 'no-weights');
    unlinkSync(path.join(dir, 'unet/model.onnx_data'));
    const e = await loadError(dir);
    expect(e.code).toBe('ENGINE_MODEL_INVALID');
    expect(e.message).toMatch(/^unet\/model\.onnx: onnxruntime could not load it/);
  });

  it('names a wrong input name and lists the inputs the model has', async () => {
    const dir = copyModel(fx.sd, fx.root, 'renamed');
    renameOnnxInput(path.join(dir, 'unet/model.onnx'), 'encoder_hidden_states', 'context');
    const e = await loadError(dir);
    expect(e.code).toBe('ENGINE_MODEL_INVALID');
    expect(e.message).toBe(
      "unet/model.onnx: has no input 'encoder_hidden_states' (its inputs: 'sample', 'timestep', 'context')",
    );
  });

  it('names a latent channel mismatch between the UNet and the VAE', async () => {
    const dir = copyModel(fx.sd, fx.root, 'channels');
    writeFileSync(path.join(dir, 'vae_decoder/model.onnx'), buildVaeDecoder(9, 8));
    const e = await loadError(dir);
    expect(e.code).toBe('ENGINE_MODEL_INVALID');
    expect(e.message).toBe(
      "vae_decoder/model.onnx: input 'latent_sample' has 8 channels but unet/model.onnx works on 4",
    );
  });

  it('names a text width mismatch between the text encoder and the UNet', async () => {
    const dir = copyModel(fx.sd, fx.root, 'width');
    const unet = buildUnet(9, 64, 'int64');
    writeFileSync(path.join(dir, 'unet/model.onnx'), unet.model);
    writeFileSync(path.join(dir, 'unet/model.onnx_data'), unet.externalData!);
    const e = await loadError(dir);
    expect(e.message).toBe("unet/model.onnx: input 'encoder_hidden_states' has width 64 but text_encoder outputs 32");
  });

  it('names a broken scheduler config', async () => {
    const dir = copyModel(fx.sd, fx.root, 'scheduler');
    const file = path.join(dir, 'scheduler/scheduler_config.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), prediction_type: 'sample' }));
    const e = await loadError(dir);
    expect(e.message).toMatch(/^scheduler\/scheduler_config\.json: prediction_type "sample" is not supported/);
    writeFileSync(file, '{ not json');
    expect((await loadError(dir)).message).toMatch(/^scheduler\/scheduler_config\.json: is not valid JSON/);
  });

  it('names a model file that is not ONNX', async () => {
    const dir = copyModel(fx.sd, fx.root, 'garbage');
    writeFileSync(path.join(dir, 'vae_decoder/model.onnx'), 'this is not a model');
    const e = await loadError(dir);
    expect(e.message).toMatch(/^vae_decoder\/model\.onnx: onnxruntime could not load it/);
  });
});

describe('npm run models:fixture', () => {
  const script = path.join(NATIVE_DIR, 'scripts/build-fixture-models.ts');
  const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });

  it('prints help, rejects unknown flags, builds, and skips current models with --if-missing', () => {
    expect(run('--help').stdout).toContain('--if-missing');
    const bad = run('--bogus');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown argument --bogus');
    const out = mkdtempSync(path.join(os.tmpdir(), 'atelier-fixture-script-'));
    try {
      const first = run('--if-missing', '--out', out);
      expect(first.status).toBe(0);
      expect(first.stdout).toMatch(/atelier-fixture-sd: built/);
      const second = run('--if-missing', '--out', out);
      expect(second.stdout).toMatch(/atelier-fixture-sd: up to date/);
      expect(second.stdout).toMatch(/atelier-fixture-turbo: up to date/);
      // Weights are deterministic: building again gives the same bytes.
      const again = buildUnet(1503, 32, 'int64').externalData!;
      expect(readFileSync(path.join(out, 'atelier-fixture-sd/unet/model.onnx_data')).equals(again)).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('models with other tensor types', () => {
  it('runs a UNet with float16 inputs and outputs, converting at the boundary', async () => {
    const dir = copyModel(fx.sd, fx.root, 'fp16');
    const unet = buildUnet(1503, 32, 'int64', true);
    writeFileSync(path.join(dir, 'unet/model.onnx'), unet.model);
    writeFileSync(path.join(dir, 'unet/model.onnx_data'), unet.externalData!);
    const half = await loadModel({ modelDir: dir });
    const full = await loadModel({ modelDir: fx.sd });
    try {
      const req = request({ scheduler: 'ddim', steps: 3 });
      const a = decodePng((await half.generate(req)).images[0]!.png).data;
      const b = decodePng((await full.generate(req)).images[0]!.png).data;
      // Same weights, so the images agree up to float16 rounding of the UNet's inputs and outputs.
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff += Math.abs(a[i]! - b[i]!);
      expect(diff / a.length).toBeLessThan(8);
      expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    } finally {
      await half.dispose();
      await full.dispose();
    }
  });
});

describe('execution providers', () => {
  it('reports a provider onnxruntime does not have as ENGINE_PROVIDER_UNAVAILABLE, not as a bad model', async () => {
    const e = await loadModel({ modelDir: fx.sd, providers: ['no-such-provider'] }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(AppError.is(e, 'ENGINE_PROVIDER_UNAVAILABLE')).toBe(true);
    expect((e as AppError).message).toMatch(/^execution provider no-such-provider cannot run here/);
  });
});
