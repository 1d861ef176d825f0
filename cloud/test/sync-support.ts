/**
 * Shared by the sync tests: an API on a fresh database whose object store signs URLs for a
 * SigV4-verifying proxy in front of s3rver (so a URL used for anything but what was signed is
 * refused as AWS would), plus helpers to make local "images" and upload them.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CreateUploadBody, PresignedPut } from '@atelier/common';
import { expect } from 'vitest';
import type { S3ObjectStore } from '../src/storage/s3-object-store.ts';
import { startTestS3, type TestS3 } from './support/s3.ts';
import { startSigV4Proxy, type SigV4Proxy } from './support/sigv4-proxy.ts';
import { auth, buildTestApp, createTestDatabase, createTestUser, type TestApp, type TestUser } from './support/index.ts';
import { fixtureMetadata } from './support/metadata.ts';

export interface SyncHarness {
  t: TestApp;
  s3: TestS3;
  proxy: SigV4Proxy;
  /** Signs for (and talks through) the proxy. */
  store: S3ObjectStore;
  /** Talks to s3rver directly (to look at the bucket as it is). */
  raw: S3ObjectStore;
  close(): Promise<void>;
}

export async function startSyncHarness(env: Record<string, string> = {}): Promise<SyncHarness> {
  const s3 = await startTestS3(`sync-${randomBytes(3).toString('hex')}`);
  const proxy = await startSigV4Proxy({ target: s3.endpoint, credentials: s3.config.credentials! });
  const store = s3.store({ endpoint: proxy.endpoint });
  const raw = s3.store();
  const db = await createTestDatabase({ S3_ENDPOINT: proxy.endpoint, S3_BUCKET: s3.bucket, ...env });
  const t = await buildTestApp({ db, overrides: { objectStore: store } });
  return {
    t,
    s3,
    proxy,
    store,
    raw,
    async close() {
      await t.close();
      await proxy.close();
      await s3.close();
    },
  };
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export const meta = (prompt: string) => fixtureMetadata(prompt, { seed: 7 });

export interface LocalImage {
  png: Buffer;
  thumb: Buffer;
  body: CreateUploadBody;
}

/** Distinct bytes each call (the server does not decode them; the sizes and hashes are what count). */
export function localImage(prompt: string, size = 4096): LocalImage {
  const png = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), randomBytes(size - 8)]);
  const thumb = randomBytes(300);
  return {
    png,
    thumb,
    body: {
      sha256: sha256(png),
      size: png.byteLength,
      thumbSha256: sha256(thumb),
      thumbSize: thumb.byteLength,
      contentType: 'image/png',
      thumbContentType: 'image/webp',
      width: 64,
      height: 64,
      metadata: meta(prompt),
    },
  };
}

/** PUT through a presigned URL with exactly the headers the server said to send (or others). */
export async function putPresigned(
  put: PresignedPut,
  body: Buffer,
  headers: Record<string, string> = put.headers,
  url: string = put.url,
): Promise<number> {
  const h = { ...headers };
  // fetch computes content-length from the body itself.
  delete h['content-length'];
  const res = await fetch(url, { method: 'PUT', headers: h, body: new Uint8Array(body) });
  await res.arrayBuffer();
  return res.status;
}

export type SyncApi = ReturnType<typeof api>;

export function api(t: TestApp) {
  return (u: TestUser, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: auth(u), ...(payload === undefined ? {} : { payload: payload as object }) });
}

/**
 * The harness plus two users, alice and bob, each already seen by the API once (GET /v1/me
 * provisions the row), for the cross-user tests: user B must neither read, change nor learn of
 * user A's things. Closes the harness if the users cannot be set up.
 */
export async function startSyncPair(env: Record<string, string> = {}): Promise<{
  h: SyncHarness;
  api: SyncApi;
  alice: TestUser;
  bob: TestUser;
}> {
  const h = await startSyncHarness(env);
  try {
    const call = api(h.t);
    const [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
    for (const u of [alice, bob]) expect((await call(u, 'GET', '/v1/me')).statusCode).toBe(200);
    return { h, api: call, alice, bob };
  } catch (e) {
    await h.close();
    throw e;
  }
}
