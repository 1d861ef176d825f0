// GET /v1/me/export against Postgres (RLS), s3rver and cognito-local: the zip holds exactly the
// caller's images (bytes as stored) and metadata, lies under the caller's prefix, and its URL expires.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import AdmZip from 'adm-zip';
import { newId, type ImageId } from '@atelier/common';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { insertImages } from '../src/db/gallery/images-repository.ts';
import { withSystemTx } from '../src/db/tx.ts';
import { imageObjectKey } from '../src/storage/keys.ts';
import type { S3ObjectStore } from '../src/storage/s3-object-store.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';
import { startTestS3, type TestS3 } from './support/s3.ts';
import { fixtureMetadata } from './support/metadata.ts';

let s3: TestS3;
let store: S3ObjectStore;
let t: TestApp;
let alice: TestUser;
let bob: TestUser;
const pngs = new Map<ImageId, Uint8Array>();

const meta = (prompt: string, seed: number) => fixtureMetadata(prompt, { seed, negative_prompt: 'blurry' });

async function seedImage(user: TestUser, prompt: string, seed: number): Promise<ImageId> {
  const id = newId('img');
  // Not compressible and not text: the zip must carry the bytes unchanged.
  const png = new Uint8Array(createHash('sha512').update(`${user.sub}/${prompt}`).digest());
  await store.put(imageObjectKey(user.sub, id), png, { contentType: 'image/png' });
  await withSystemTx(t.systemPool, (tx) =>
    insertImages(tx, user.sub, [
      {
        id,
        generationId: null,
        batchIndex: null,
        width: 64,
        height: 64,
        metadata: meta(prompt, seed),
        size: png.byteLength,
        sha256: createHash('sha256').update(png).digest('hex'),
        thumbMime: 'image/png',
      },
    ]),
  );
  pngs.set(id, png);
  return id;
}

const exportOf = (u: TestUser) => t.app.inject({ url: '/v1/me/export', headers: auth(u) });

async function download(url: string): Promise<{ status: number; body: Buffer }> {
  const r = await fetch(url);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
}

let aliceImages: ImageId[];
let bobImages: ImageId[];

beforeAll(async () => {
  s3 = await startTestS3('account-export');
  store = s3.store();
  await store.ensureBucket();
  const db = await createTestDatabase({ S3_ENDPOINT: s3.endpoint, S3_BUCKET: s3.bucket, S3_PRESIGN_SECONDS: '3' });
  t = await buildTestApp({ db, overrides: { objectStore: store } });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  for (const u of [alice, bob]) expect((await t.app.inject({ url: '/v1/me', headers: auth(u) })).statusCode).toBe(200);
  aliceImages = [await seedImage(alice, 'a red fox', 1), await seedImage(alice, 'a blue whale', 2)];
  bobImages = [await seedImage(bob, 'bob private picture', 3)];
  // A deleted (tombstoned) image is not exported.
  const gone = await seedImage(alice, 'deleted one', 4);
  const del = await t.app.inject({ method: 'DELETE', url: `/v1/images/${gone}`, headers: auth(alice) });
  expect(del.statusCode).toBeLessThan(300);
  const board = await t.app.inject({
    method: 'POST',
    url: '/v1/boards',
    headers: auth(alice),
    payload: { name: 'Animals' },
  });
  expect(board.statusCode).toBe(201);
});

afterAll(async () => {
  await t?.close();
  await s3?.close();
});

describe('GET /v1/me/export', () => {
  it('needs a token', async () => {
    const r = await t.app.inject({ url: '/v1/me/export' });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('AUTH_REQUIRED');
  });

  it('answers a presigned URL to a zip of exactly the caller’s live images and their metadata', async () => {
    const r = await exportOf(alice);
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.images).toBe(2);
    const url = new URL(body.url);
    // The server built the key under the caller's prefix.
    expect(decodeURIComponent(url.pathname)).toMatch(
      new RegExp(`^/account-export/users/${alice.sub}/exports/exp_[0-9a-f-]{36}\\.zip$`),
    );
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBe(3);
    const { status, body: zipBytes } = await download(body.url);
    expect(status).toBe(200);
    expect(zipBytes.length).toBe(body.bytes);

    const entries = new AdmZip(zipBytes).getEntries();
    const names = entries.map((e) => e.entryName).sort();
    expect(names).toEqual(['atelier-export.json', ...aliceImages.map((id) => `images/${id}.png`)].sort());
    for (const id of aliceImages) {
      const entry = entries.find((e) => e.entryName === `images/${id}.png`)!;
      expect(Buffer.compare(entry.getData(), Buffer.from(pngs.get(id)!))).toBe(0);
    }
    const manifest = JSON.parse(
      entries
        .find((e) => e.entryName === 'atelier-export.json')!
        .getData()
        .toString('utf8'),
    );
    expect(manifest).toMatchObject({
      format: 'atelier-export/1',
      account: { id: alice.sub, email: alice.email, plan: 'free' },
      boards: [expect.objectContaining({ name: 'Animals' })],
    });
    expect(manifest.images.map((i: { id: string }) => i.id)).toEqual(aliceImages);
    expect(manifest.images[0]).toMatchObject({
      file: `images/${aliceImages[0]}.png`,
      metadata: { positive_prompt: 'a red fox', negative_prompt: 'blurry', seed: 1 },
    });
    // Nothing of another user.
    const text = zipBytes.toString('latin1');
    expect(text).not.toContain(bob.sub);
    for (const id of bobImages) expect(text).not.toContain(id);
    expect(text).not.toContain('bob private picture');
  });

  it('gives each user their own data only (bob’s export holds bob’s image)', async () => {
    const r = await exportOf(bob);
    expect(r.statusCode).toBe(200);
    expect(r.json().images).toBe(1);
    expect(decodeURIComponent(new URL(r.json().url).pathname)).toContain(`/users/${bob.sub}/exports/`);
    const entries = new AdmZip((await download(r.json().url)).body).getEntries();
    expect(entries.map((e) => e.entryName).sort()).toEqual(['atelier-export.json', `images/${bobImages[0]}.png`]);
    const manifest = JSON.parse(
      entries
        .find((e) => e.entryName === 'atelier-export.json')!
        .getData()
        .toString('utf8'),
    );
    expect(JSON.stringify(manifest)).not.toContain(alice.sub);
    expect(JSON.stringify(manifest)).not.toContain(alice.email);
  });

  it('an export URL stops working when it expires', async () => {
    const r = await exportOf(bob);
    const expiresAt = Date.parse(r.json().expiresAt);
    await sleep(Math.max(0, expiresAt - Date.now()) + 1500);
    expect((await download(r.json().url)).status).toBe(403);
  });

  it('refuses an account that is being deleted with ACCOUNT_DELETED', async () => {
    const carol = await createTestUser();
    expect((await t.app.inject({ url: '/v1/me', headers: auth(carol) })).statusCode).toBe(200);
    const del = await t.app.inject({
      method: 'DELETE',
      url: '/v1/me',
      headers: auth(carol),
      payload: { email: carol.email, password: carol.password },
    });
    expect(del.statusCode).toBe(202);
    const r = await exportOf(carol);
    expect(r.statusCode).toBe(410);
    expect(r.json().error.code).toBe('ACCOUNT_DELETED');
  });
});
