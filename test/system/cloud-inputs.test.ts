/**
 * The desktop's cloud path for starting images (issue 15), against the real pieces: desktop
 * services (SQLite library, job queue, cloud client) → the Fastify API on Postgres with RLS →
 * s3rver behind the SigV4-verifying proxy → a worker running the real engine on the demo model.
 * A cloud job naming a picture of the local library uploads its bytes as an input first (the
 * cloud never sees a local id), names the input, and the image that comes back is byte for byte
 * what the CLI makes from the same file. A painted mask from the library goes up as a mask input
 * while the starting image, already known to the cloud, is not uploaded again.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CloudInput, GenerateRequest, LibraryQuery, type GenerateRequestInput, type LocalJob } from '@atelier/common';
import { encodePng } from '@atelier/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../../cloud/src/worker/main.ts';
import { createTestUser, stackInfo, type TestUser } from '../../cloud/test/support/index.ts';
import { startSyncHarness, type SyncHarness } from '../../cloud/test/sync-support.ts';
import { createDesktopServices, type DesktopServices } from '../../src-main/services/desktop-services.ts';
import { InMemorySecretStore } from '../../src-main/services/secret-store.ts';
import { InMemoryEngine } from '../../src-main/services/testing/in-memory-engine.ts';
import { InMemoryModels } from '../../src-main/services/testing/in-memory-models.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const MODEL_DIR = path.join(REPO, 'native/models/atelier-demo-shapes');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let h: SyncHarness;
let worker: RunningWorker;
let services: DesktopServices;
let user: TestUser;
let tmp: string;

beforeAll(async () => {
  h = await startSyncHarness({
    JANITOR_INTERVAL_SECONDS: '0',
    WORKER_ENGINE_THREADS: '1',
    // The worker's catalogue default (the demo model in native/models).
    ATELIER_DEFAULT_MODEL: 'atelier-demo-shapes',
  });
  await h.t.app.listen({ port: 0, host: '127.0.0.1' });
  const apiUrl = `http://127.0.0.1:${(h.t.app.server.address() as AddressInfo).port}`;
  worker = await startWorker(h.t.config, { store: h.store });
  user = await createTestUser();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'atelier-cloud-inputs-'));
  const s = stackInfo();
  services = await createDesktopServices({
    paths: { userData: path.join(tmp, 'profile') },
    secretStore: new InMemorySecretStore(),
    engine: new InMemoryEngine(),
    models: new InMemoryModels(),
    cloud: {
      apiUrl,
      cognito: { endpoint: s.cognitoEndpoint, region: 'local', userPoolId: s.userPoolId, clientId: s.clientId },
    },
    shell: 'browser',
    version: '0.1.0',
    platform: 'linux',
    urlFor: (f) => f,
  });
  await services.handlers['account:signIn']({ email: user.email, password: user.password });
}, 120_000);
afterAll(async () => {
  await services?.close();
  await worker?.stop(1000);
  await h?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A picture imported into the local library like a person would; `paint` says each pixel's RGB. */
async function localPicture(
  name: string,
  paint: (x: number, y: number) => number[],
): Promise<{ id: string; bytes: Buffer }> {
  const data = new Uint8Array(64 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) data.set(paint(x, y), (y * 64 + x) * 3);
  const bytes = Buffer.from(encodePng({ width: 64, height: 64, channels: 3, data }));
  const file = path.join(tmp, name);
  writeFileSync(file, bytes);
  const h2 = services.handlers;
  const before = new Set((await h2['library:list'](LibraryQuery.parse({}))).items.map((i) => i.id));
  expect(await h2['library:import']({ paths: [file] })).toMatchObject({ imported: 1 });
  const added = (await h2['library:list'](LibraryQuery.parse({}))).items.filter((i) => !before.has(i.id));
  expect(added).toHaveLength(1);
  return { id: added[0]!.id, bytes };
}

async function run(request: GenerateRequestInput): Promise<LocalJob> {
  const { jobs, decision } = await services.handlers['jobs:submit'](GenerateRequest.parse(request));
  expect(decision).toMatchObject({ target: 'cloud', blocked: null });
  return Promise.race([
    finished(jobs[0]!.id),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error('job did not finish')), 120_000)),
  ]);
}

function finished(jobId: string): Promise<LocalJob> {
  return new Promise((resolve) =>
    services.events.on('jobs:changed', (j) => {
      if (j.id === jobId && ['succeeded', 'failed', 'canceled'].includes(j.state)) resolve(j);
    }),
  );
}

describe('a cloud job starting from a local picture', () => {
  it('uploads the picture as an input, runs in the cloud, and brings back the CLI’s bytes', async () => {
    const start = await localPicture('start.png', (x, y) => (x > y && x < 48 ? [40, 200, 60] : [128, 128, 128]));
    const request = {
      prompt: 'a yellow circle on a blue background',
      target: 'cloud' as const,
      initImage: start.id,
      strength: 0.7,
      width: 64,
      height: 64,
      steps: 10,
      guidance: 5,
      scheduler: 'ddim' as const,
      seed: 2026,
    };
    const job = await run(request);
    expect(job.error).toBeNull();
    expect(job.state).toBe('succeeded');

    // The cloud generation names an input, never the local id; the input holds the local bytes.
    const gen = await services.cloud!.api.getGeneration(job.cloudGenerationId!);
    const inputId = gen.params.initImage!;
    expect(inputId).toMatch(/^inp_/);
    const input = await services.cloud!.request('GET', `/v1/inputs/${inputId}`, CloudInput);
    expect(input).toMatchObject({ status: 'ready', purpose: 'init', sha256: sha256(start.bytes), width: 64 });
    // The bytes went to S3 through the presigned URL the proxy verified, under the user's prefix.
    expect(
      h.proxy.requests.some(
        (r) => r.ok && r.method === 'PUT' && r.path.endsWith(`/users/${user.sub}/inputs/${inputId}.png`),
      ),
    ).toBe(true);

    const image = await services.handlers['library:get']({ id: job.imageIds[0]! });
    // The library records its own picture's id (decision 0155), so Reuse settings and the job card
    // find the starting image on this computer; the PNG's own chunk keeps the cloud's input id.
    expect(image.metadata).toMatchObject({ generation_mode: 'img2img', init_image: start.id, strength: 0.7 });
    const { path: resultFile } = await services.handlers['library:reveal']({ id: image.id });
    const result = readFileSync(resultFile);

    // Locally, from the same file (named as the cloud names it, which the metadata records).
    const named = path.join(tmp, inputId);
    copyFileSync(path.join(tmp, 'start.png'), named);
    const out = path.join(tmp, 'cli.png');
    execFileSync(
      path.join(REPO, 'node_modules/.bin/node'),
      [
        path.join(REPO, 'native/bin/atelier.ts'),
        'generate',
        request.prompt,
        '--init',
        named,
        '--strength',
        String(request.strength),
        '--seed',
        String(request.seed),
        '--steps',
        String(request.steps),
        '--guidance',
        String(request.guidance),
        '--scheduler',
        request.scheduler,
        '--width',
        '64',
        '--height',
        '64',
        '--model',
        MODEL_DIR,
        '--threads',
        '1',
        '--out',
        out,
      ],
      { cwd: REPO, stdio: 'pipe' },
    );
    expect(sha256(result)).toBe(sha256(readFileSync(out)));

    // Inpainting from the same picture and a painted mask of the library: the mask goes up as a
    // mask input, the starting image is not uploaded again (the cloud knows the file).
    const mask = await localPicture('mask.png', (x) => (x < 32 ? [255, 255, 255] : [0, 0, 0]));
    const puts = () => h.proxy.requests.filter((r) => r.ok && r.method === 'PUT' && r.path.includes('/inputs/')).length;
    const putsBefore = puts();
    const inpaint = await run({ ...request, mask: mask.id, strength: 1, seed: 7 });
    expect(inpaint.error).toBeNull();
    expect(inpaint.state).toBe('succeeded');
    const gen2 = await services.cloud!.api.getGeneration(inpaint.cloudGenerationId!);
    expect(gen2.params.initImage).toBe(inputId);
    const maskInput = await services.cloud!.request('GET', `/v1/inputs/${gen2.params.mask!}`, CloudInput);
    expect(maskInput).toMatchObject({ status: 'ready', purpose: 'mask', sha256: sha256(mask.bytes) });
    expect(puts() - putsBefore).toBe(1);
    const painted = await services.handlers['library:get']({ id: inpaint.imageIds[0]! });
    expect(painted.metadata).toMatchObject({ generation_mode: 'inpaint', init_image: start.id, init_mask: mask.id });
  });
});
