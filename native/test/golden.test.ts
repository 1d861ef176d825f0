/**
 * Golden outputs: the sha256 of the decoded pixels of a few fixture-pipeline generations, pinned.
 * The determinism tests only compare the engine with itself (same request twice, fresh load); a
 * change to the tokenizer, a scheduler, guidance, the latent noise, VAE scaling or the pixel
 * conversion that moves any pixel by one level passes those and fails here.
 *
 * Pixels, not PNG bytes: the encoder's filter choice and the metadata chunk (app version) may
 * change without the image changing. The fixture models' own content hashes are pinned as well,
 * so a changed fixture builder is told apart from a changed engine.
 *
 * When a change is intended, update the hashes in the same commit and say why in its message.
 * Measured with onnxruntime-node's CPU provider (the only one on the test machines).
 */
import { createHash } from 'node:crypto';
import type { ResolvedGenerateRequest } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, type DiffusionModel, loadModel } from '../src/index.ts';
import { buildFixtures, type Fixtures, request } from './support.ts';

let fx: Fixtures;
let sd: DiffusionModel;
let turbo: DiffusionModel;

beforeAll(async () => {
  fx = buildFixtures();
  sd = await loadModel({ modelDir: fx.sd });
  turbo = await loadModel({ modelDir: fx.turbo });
});
afterAll(async () => {
  await sd?.dispose();
  await turbo?.dispose();
  fx?.cleanup();
});

const pixelSha = (png: Uint8Array) => createHash('sha256').update(decodePng(png).data).digest('hex');

const CASES: { name: string; model: 'sd' | 'turbo'; req: Partial<ResolvedGenerateRequest>; sha256: string[] }[] = [
  {
    name: 'SD fixture, Euler a, 4 steps, guidance 7.5, 64×64, seed 1234',
    model: 'sd',
    req: {},
    sha256: ['01fe21d826cf887081c1f1655bea9fca9f0c2d67a5f4f7a3c2aa1fa5f682a1ea'],
  },
  {
    name: 'SD fixture, DDIM, 3 steps, 72×64 (non-power-of-two latent), seed 7',
    model: 'sd',
    req: { scheduler: 'ddim', steps: 3, width: 72, height: 64, seed: 7 },
    sha256: ['8ad91be3deb26696bac9ee5d9e231cc7179816f8d2674fdacc630f4544d06943'],
  },
  {
    name: 'SD fixture, Euler, guidance 1 (no negative pass), batch of 2 from seed 4294967295',
    model: 'sd',
    req: { scheduler: 'euler', steps: 2, guidance: 1, count: 2, seed: 4294967295, prompt: 'ein Leuchtturm, 灯台 🌊' },
    sha256: [
      '4bc397270f6c7545bedf7da1dc1450d0a6915aa54f69a9aed10da95aa64f3990',
      'f293a24f432aa766b7fc4a8c08c9be7af494a910dcbd2006c5515282ddd47b15',
    ],
  },
  {
    name: 'Turbo fixture, LCM, 2 steps, guidance 0, seed 42',
    model: 'turbo',
    req: { model: 'atelier-fixture-turbo', scheduler: 'lcm', steps: 2, guidance: 0, seed: 42 },
    sha256: ['714c3505e671f01d64283946a85b2c1745975a488f01f0a8804629d92ff1815c'],
  },
];

describe('golden outputs of the fixture pipeline', () => {
  it('the fixture models are the ones the goldens were made with', () => {
    expect({ sd: sd.hash, turbo: turbo.hash }).toEqual({
      sd: '254519c0aab0f595fc7073d3465d1965c5816f770d7d51d976afc6081b01be24',
      turbo: '9e3f24620e8fc4797fbf687baa71b209839f8644ca09076a4e0ceaf754967a36',
    });
  });

  for (const c of CASES)
    it(c.name, async () => {
      const r = await (c.model === 'sd' ? sd : turbo).generate(request(c.req));
      expect(r.images.map((i) => pixelSha(i.png))).toEqual(c.sha256);
    });
});
