/**
 * Image to image and inpainting through the cloud, end to end (issue 15): the starting image and
 * mask go up as inputs, a generation names them, the worker fetches them from S3 and runs the real
 * engine on the demo model — and the PNG it stores is byte for byte the one the CLI makes locally
 * from the same files and request (metadata included: the CLI records the file's base name, so the
 * files are named after the input ids).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodePng, readPngMetadata } from '@atelier/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelCatalogue } from '../src/catalogue/catalogue.ts';
import { startWorker, type RunningWorker } from '../src/worker/main.ts';
import { until } from './gen-support.ts';
import { maskPng, sha256, startPng, uploadInput } from './inputs-support.ts';
import { startTestS3, type TestS3 } from './support/s3.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  testConfig,
  type TestApp,
  type TestUser,
} from './support/index.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const MODEL_DIR = path.join(REPO, 'native/models/atelier-demo-shapes');

let s3: TestS3;
let t: TestApp;
let worker: RunningWorker;
let user: TestUser;
let dir: string;

beforeAll(async () => {
  s3 = await startTestS3('inputs-e2e');
  const env = {
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    WORKER_ENGINE_THREADS: '1',
    JANITOR_INTERVAL_SECONDS: '0',
  };
  const db = await createTestDatabase(env);
  const catalogue = createModelCatalogue(db.config.gen.catalogue, { modelsRoot: db.config.gen.modelsRoot });
  t = await buildTestApp({ db, overrides: { objectStore: s3.store(), catalogue } });
  worker = await startWorker(testConfig(db.url, env));
  user = await createTestUser();
  expect((await t.app.inject({ url: '/v1/me', headers: auth(user) })).statusCode).toBe(200);
  dir = mkdtempSync(path.join(tmpdir(), 'atelier-inputs-e2e-'));
});
afterAll(async () => {
  await worker?.stop(1000);
  await t?.close();
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cloudPng(request: Record<string, unknown>): Promise<{ png: Uint8Array; sha: string; id: string }> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/generations', headers: auth(user), payload: request });
  expect(res.statusCode).toBe(202);
  const id = res.json().id as string;
  const gen = await until(
    async () =>
      (await t.app.inject({ url: `/v1/generations/${id}`, headers: auth(user) })).json() as {
        status: string;
        imageIds: string[];
        errorCode?: string | null;
      },
    (g) => g.status !== 'queued' && g.status !== 'running',
    120_000,
  );
  expect(gen).toMatchObject({ status: 'succeeded' });
  const img = (await t.app.inject({ url: `/v1/images/${gen.imageIds[0]}`, headers: auth(user) })).json();
  const png = new Uint8Array(await (await fetch(img.url)).arrayBuffer());
  expect(sha256(png)).toBe(img.sha256);
  return { png, sha: img.sha256, id: img.id as string };
}

function cliPng(request: Record<string, string | number>, files: { init: string; mask?: string }): string {
  const out = path.join(dir, `cli-${Date.now()}.png`);
  const args = [
    path.join(REPO, 'native/bin/atelier.ts'),
    'generate',
    String(request.prompt),
    '--init',
    files.init,
    ...(files.mask ? ['--mask', files.mask] : []),
    '--strength',
    String(request.strength),
    '--seed',
    String(request.seed),
    '--steps',
    String(request.steps),
    '--guidance',
    String(request.guidance),
    '--scheduler',
    String(request.scheduler),
    '--width',
    String(request.width),
    '--height',
    String(request.height),
    '--model',
    MODEL_DIR,
    '--threads',
    '1',
    '--out',
    out,
  ];
  execFileSync(path.join(REPO, 'node_modules/.bin/node'), args, { cwd: REPO, stdio: 'pipe' });
  return sha256(readFileSync(out));
}

/** The file the CLI reads, named as the cloud names the input (the metadata records the name). */
function asFile(id: string, bytes: Buffer): string {
  const file = path.join(dir, id);
  writeFileSync(file, bytes);
  return file;
}

describe('starting images and masks through the cloud', () => {
  it('image to image from an input and from a gallery image: the PNG equals the CLI’s byte for byte', async () => {
    const start = startPng();
    const init = await uploadInput(t.app, user, start, 'init');
    const request = {
      prompt: 'a yellow circle on a green background',
      width: 64,
      height: 64,
      steps: 10,
      guidance: 5,
      scheduler: 'ddim',
      seed: 31337,
      strength: 0.6,
      initImage: init,
      target: 'cloud',
    };
    const cloud = await cloudPng(request);
    expect(readPngMetadata(cloud.png)).toMatchObject({
      generation_mode: 'img2img',
      strength: 0.6,
      init_image: init,
      seed: 31337,
    });
    expect(cliPng(request, { init: asFile(init, start) })).toBe(cloud.sha);

    // The user's own cloud gallery image works as a starting image too, by its img_ id.
    const again = { ...request, initImage: cloud.id, strength: 0.5, seed: 99 };
    const second = await cloudPng(again);
    expect(readPngMetadata(second.png)).toMatchObject({ generation_mode: 'img2img', init_image: cloud.id });
    expect(cliPng(again, { init: asFile(cloud.id, Buffer.from(cloud.png)) })).toBe(second.sha);
  });

  it('inpainting: pixels outside the mask’s feather are the starting image’s, and the PNG equals the CLI’s', async () => {
    const start = startPng(64, 64, 2);
    const maskBytes = maskPng();
    const init = await uploadInput(t.app, user, start, 'init');
    const mask = await uploadInput(t.app, user, maskBytes, 'mask');
    const request = {
      prompt: 'a white square on a black background',
      width: 64,
      height: 64,
      steps: 8,
      guidance: 5,
      scheduler: 'euler',
      seed: 4242,
      strength: 1,
      initImage: init,
      mask,
      target: 'cloud',
    };
    const cloud = await cloudPng(request);
    expect(readPngMetadata(cloud.png)).toMatchObject({
      generation_mode: 'inpaint',
      init_image: init,
      init_mask: mask,
    });
    // The mask repaints x < 32; the feather is 2 px at 64×64 (decision 0150), so from x = 34 on
    // every pixel is the starting image's.
    const out = decodePng(cloud.png);
    const orig = decodePng(start);
    let kept = 0;
    let changed = 0;
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++) {
        const same = [0, 1, 2].every(
          (c) => out.data[(y * 64 + x) * out.channels + c] === orig.data[(y * 64 + x) * orig.channels + c],
        );
        if (x >= 34) kept += same ? 1 : 0;
        else if (x < 30 && !same) changed++;
      }
    expect(kept).toBe(30 * 64);
    expect(changed).toBeGreaterThan(0);
    expect(cliPng(request, { init: asFile(init, start), mask: asFile(mask, maskBytes) })).toBe(cloud.sha);
  });
});
