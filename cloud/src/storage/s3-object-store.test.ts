import { createHash } from 'node:crypto';
import { AppError, newId } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestS3 } from '../../test/support/s3.ts';
import { startSigV4Proxy } from '../../test/support/sigv4-proxy.ts';
import type { TestS3 } from '../../test/support/s3.ts';
import { imageObjectKey, thumbObjectKey } from './keys.ts';
import { S3ObjectStore } from './s3-object-store.ts';

describe('S3ObjectStore against s3rver', () => {
  let s3: TestS3;
  const user = 'user-a';

  beforeAll(async () => {
    s3 = await startTestS3('atelier-store-test');
  });
  afterAll(async () => {
    await s3.close();
  });

  it('puts, heads, gets and deletes bytes at server-built keys', async () => {
    const store = s3.store();
    const key = imageObjectKey(user, newId('img'));
    const body = new Uint8Array([137, 80, 78, 71, 1, 2, 3]);
    await store.put(key, body, { contentType: 'image/png', sha256: 'ab' });
    expect(await store.head(key)).toEqual({ size: body.byteLength, contentType: 'image/png' });
    expect(Buffer.from((await store.get(key))!)).toEqual(Buffer.from(body));
    await store.delete([key]);
    expect(await store.get(key)).toBeNull();
    expect(await store.head(key)).toBeNull();
    await store.delete([key]); // deleting again is fine
  });

  it('presigns a GET for exactly one key that downloads the object', async () => {
    const store = s3.store();
    const id = newId('img');
    const key = thumbObjectKey(user, id, 'image/webp');
    const body = new TextEncoder().encode('thumb bytes');
    await store.put(key, body, { contentType: 'image/webp' });
    const url = new URL(await store.presignGet(key, { expiresInSeconds: 3600 }));
    expect(url.pathname).toBe(`/${s3.bucket}/${key}`);
    // Asked for an hour, got the 15-minute maximum.
    expect(url.searchParams.get('X-Amz-Expires')).toBe('900');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(
      createHash('sha256')
        .update(new Uint8Array(await res.arrayBuffer()))
        .digest('hex'),
    ).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('presigns GETs the SigV4-verifying proxy accepts, and only for their own key', async () => {
    const proxy = await startSigV4Proxy({ target: s3.endpoint, credentials: s3.config.credentials! });
    try {
      const store = s3.store({ endpoint: proxy.endpoint });
      const keys = [imageObjectKey(user, newId('img')), thumbObjectKey(user, newId('img'), 'image/png')];
      for (const k of keys) await store.put(k, new TextEncoder().encode(k), { contentType: 'image/png' });
      // Signed one by one and many at once (the feed signs a page's worth together).
      const urls = await Promise.all(keys.map((k) => store.presignGet(k)));
      for (const [i, u] of urls.entries()) {
        const res = await fetch(u);
        expect(res.status).toBe(200);
        expect(await res.text()).toBe(keys[i]);
      }
      // The same signature on the other key is refused: the signature binds the path.
      const swapped = new URL(urls[0]!);
      swapped.pathname = new URL(urls[1]!).pathname;
      expect((await fetch(swapped)).status).toBe(403);
      // And an SDK-made URL for the same key has the same form (same query parameters, same path).
      const fast = new URL(urls[0]!);
      const sdk = new URL(await s3.store({ endpoint: proxy.endpoint }).presignGetWithSdk(keys[0]!));
      expect(fast.pathname).toBe(sdk.pathname);
      expect([...fast.searchParams.keys()].sort()).toEqual([...sdk.searchParams.keys()].sort());
    } finally {
      await proxy.close();
    }
  });

  it('presigns a PUT that uploads to exactly its key (signature verified by a SigV4 proxy)', async () => {
    // s3rver ignores signatures, so the bucket sits behind a proxy that verifies SigV4 with the
    // AWS SDK's signer: the URL must work for its key and fail for any other key, method or signature.
    let clock = new Date();
    const proxy = await startSigV4Proxy({ target: s3.endpoint, credentials: s3.config.credentials!, now: () => clock });
    try {
      const store = s3.store({ endpoint: proxy.endpoint });
      const key = imageObjectKey(user, newId('img'));
      const other = imageObjectKey(user, newId('img'));
      const url = new URL(await store.presignPut(key, { contentType: 'image/png', expiresInSeconds: 60 }));
      expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
      expect(url.pathname).toBe(`/${s3.bucket}/${key}`);
      const put = (u: URL | string, init: { method?: string; body?: Uint8Array } = {}) =>
        fetch(u, {
          method: init.method ?? 'PUT',
          ...(init.method === 'GET' ? {} : { body: init.body ?? new Uint8Array([1, 2, 3]) }),
          headers: { 'content-type': 'image/png' },
        });

      // The same signature on another key of the same user, on another user's key, with one
      // character of the signature changed, or for another method: refused, nothing written.
      const elsewhere = new URL(url);
      elsewhere.pathname = `/${s3.bucket}/${other}`;
      expect((await put(elsewhere)).status).toBe(403);
      const otherUser = new URL(url);
      otherUser.pathname = `/${s3.bucket}/${imageObjectKey('user-b', newId('img'))}`;
      expect((await put(otherUser)).status).toBe(403);
      const tampered = new URL(url);
      const sig = tampered.searchParams.get('X-Amz-Signature')!;
      tampered.searchParams.set('X-Amz-Signature', `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`);
      expect((await put(tampered)).status).toBe(403);
      expect((await put(url, { method: 'GET' })).status).toBe(403);
      expect(await store.head(other)).toBeNull();
      expect(await store.head(key)).toBeNull();

      // Its own key, in time: accepted and stored.
      const res = await put(url);
      expect(res.status, JSON.stringify(proxy.requests)).toBe(200);
      expect(await store.head(key)).toMatchObject({ size: 3 });

      // After its 60 seconds: refused.
      clock = new Date(clock.getTime() + 61_000);
      expect((await put(url, { body: new Uint8Array([9]) })).status).toBe(403);
      clock = new Date();
      expect(await store.head(key)).toMatchObject({ size: 3 });
      // The SDK's own header-signed calls passed the same check (head, put), and every refusal is
      // one of the forged requests above.
      const refused = proxy.requests.filter((r) => !r.ok);
      expect(refused.map((r) => r.reason?.split(':')[0])).toEqual([
        'SignatureDoesNotMatch',
        'SignatureDoesNotMatch',
        'SignatureDoesNotMatch',
        'SignatureDoesNotMatch',
        'AccessDenied',
      ]);
      expect(proxy.requests.filter((r) => r.ok && r.method === 'HEAD').length).toBeGreaterThanOrEqual(3);
    } finally {
      await proxy.close();
    }
  });

  it('presigns checksum-bound PUTs on the learned endpoint in the SDK’s own form, accepted by the SigV4 proxy', async () => {
    const proxy = await startSigV4Proxy({ target: s3.endpoint, credentials: s3.config.credentials! });
    try {
      const store = s3.store({ endpoint: proxy.endpoint });
      const body = new TextEncoder().encode('png bytes, bound');
      const binding = {
        contentType: 'image/png',
        contentLength: body.byteLength,
        checksumSha256: createHash('sha256').update(body).digest('hex'),
      };
      const key = imageObjectKey(user, newId('img'));
      const fast = new URL(await store.presignPut(key, binding));
      const sdk = new URL(await store.presignPutWithSdk(key, binding));
      expect(fast.pathname).toBe(sdk.pathname);
      const params = (u: URL) =>
        Object.fromEntries([...u.searchParams].filter(([k]) => k !== 'X-Amz-Signature' && k !== 'X-Amz-Date'));
      expect(params(fast)).toEqual(params(sdk));
      expect(fast.searchParams.get('X-Amz-SignedHeaders')).toBe(
        'content-length;content-type;host;x-amz-checksum-sha256',
      );
      const headers = {
        'content-type': 'image/png',
        'x-amz-checksum-sha256': Buffer.from(binding.checksumSha256, 'hex').toString('base64'),
      };
      // Another checksum than the signed one is refused; the bound one is stored.
      const wrong = { ...headers, 'x-amz-checksum-sha256': Buffer.alloc(32, 7).toString('base64') };
      expect((await fetch(fast, { method: 'PUT', headers: wrong, body })).status).toBe(403);
      expect((await fetch(fast, { method: 'PUT', headers, body })).status).toBe(200);
      expect(await store.head(key)).toMatchObject({ size: body.byteLength });
    } finally {
      await proxy.close();
    }
  });

  it('creates a missing bucket once and tolerates it existing', async () => {
    const store = s3.store({ bucket: 'created-by-store' });
    await store.ensureBucket();
    await store.ensureBucket();
    const key = imageObjectKey(user, newId('img'));
    await store.put(key, new Uint8Array([1]), { contentType: 'image/png' });
    expect(await store.head(key)).not.toBeNull();
  });

  it('reports an unreachable endpoint as STORAGE_UNAVAILABLE', async () => {
    // A port nothing listens on: the s3rver port after it closed would race, so take a closed one.
    const { createServer } = await import('node:net');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const store = new S3ObjectStore({ ...s3.config, endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 });
    try {
      const key = imageObjectKey(user, newId('img'));
      const err = await store.put(key, new Uint8Array([1]), { contentType: 'image/png' }).catch((e: unknown) => e);
      expect(AppError.is(err, 'STORAGE_UNAVAILABLE')).toBe(true);
      await expect(store.get(key)).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    } finally {
      store.close();
    }
  });
});
