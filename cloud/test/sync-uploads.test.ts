/**
 * POST /v1/uploads and /v1/uploads/:id/complete on real Postgres (RLS), cognito-local and s3rver
 * behind a SigV4-verifying proxy: server-built keys, URLs bound to key, method, length and
 * checksum, one record per sha256, nothing recorded until the objects are there with the declared
 * sizes, the storage quota before any byte moves, the sweep of abandoned uploads, and user B
 * unable to complete, reuse or learn of user A's uploads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageObjectKey, thumbObjectKey, userPrefix } from '../src/storage/keys.ts';
import { sweepExpiredUploads } from '../src/sync/uploads.ts';
import { auth, createTestUser, type TestUser } from './support/index.ts';
import { localImage, putPresigned, startSyncPair, type SyncApi, type SyncHarness } from './sync-support.ts';

let h: SyncHarness;
let api: SyncApi;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  ({ h, api, alice, bob } = await startSyncPair());
});
afterAll(async () => {
  await h?.close();
});

const rowsFor = async (userId: string) =>
  (
    await h.t.adminPool.query<{ id: string; size: number; thumb_size: number }>(
      'SELECT id, size, thumb_size FROM images WHERE user_id = $1 ORDER BY id',
      [userId],
    )
  ).rows;
const uploadsFor = async (userId: string) =>
  (await h.t.adminPool.query<{ id: string }>('SELECT id FROM uploads WHERE user_id = $1', [userId])).rows;

async function objectsUnder(prefix: string): Promise<string[]> {
  // Through s3rver directly: what is in the bucket, not what a signed URL lets through.
  const res = await fetch(`${h.s3.endpoint}/${h.s3.bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  const xml = await res.text();
  return [...xml.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]!).sort();
}

describe('uploads', () => {
  it('records an image only after both objects are in the bucket, under server-built keys', async () => {
    const img = localImage('a lighthouse at dusk');
    const res = await api(alice, 'POST', '/v1/uploads', img.body);
    expect(res.statusCode).toBe(201);
    const up = res.json();
    expect(up.status).toBe('pending');
    expect(new URL(up.image.url).pathname).toBe(`/${h.s3.bucket}/${imageObjectKey(alice.sub, up.id)}`);
    expect(new URL(up.thumb.url).pathname).toBe(`/${h.s3.bucket}/${thumbObjectKey(alice.sub, up.id, 'image/webp')}`);
    // ≤ 15 minutes, and the URL's own expiry says the same.
    const lifetime = Date.parse(up.image.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(0);
    expect(lifetime).toBeLessThanOrEqual(15 * 60 * 1000);
    expect(Number(new URL(up.image.url).searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
    expect(new URL(up.image.url).searchParams.get('X-Amz-SignedHeaders')).toBe(
      'content-length;content-type;host;x-amz-checksum-sha256',
    );
    expect(up.image.headers).toEqual({
      'content-type': 'image/png',
      'content-length': String(img.png.byteLength),
      'x-amz-checksum-sha256': Buffer.from(img.body.sha256, 'hex').toString('base64'),
    });

    // Nothing is recorded yet.
    expect((await api(alice, 'GET', `/v1/images/${up.id}`)).statusCode).toBe(404);
    const early = await api(alice, 'POST', `/v1/uploads/${up.id}/complete`);
    expect(early.statusCode).toBe(409);
    expect(early.json().error).toMatchObject({ code: 'UPLOAD_INCOMPLETE', details: { missing: ['image', 'thumb'] } });

    expect(await putPresigned(up.image, img.png)).toBe(200);
    const half = await api(alice, 'POST', `/v1/uploads/${up.id}/complete`);
    expect(half.json().error).toMatchObject({ code: 'UPLOAD_INCOMPLETE', details: { missing: ['thumb'] } });
    expect((await rowsFor(alice.sub)).map((r) => r.id)).not.toContain(up.id);

    expect(await putPresigned(up.thumb, img.thumb)).toBe(200);
    const done = await api(alice, 'POST', `/v1/uploads/${up.id}/complete`);
    expect(done.statusCode).toBe(200);
    expect(done.json()).toMatchObject({
      id: up.id,
      sha256: img.body.sha256,
      size: img.png.byteLength,
      generationId: null,
    });
    expect(done.json().metadata.positive_prompt).toBe('a lighthouse at dusk');

    // The bytes in the bucket are the bytes sent; the reservation is gone; completing again is harmless.
    expect(Buffer.from((await h.raw.get(imageObjectKey(alice.sub, up.id)))!)).toEqual(img.png);
    expect(await uploadsFor(alice.sub)).toEqual([]);
    expect((await api(alice, 'POST', `/v1/uploads/${up.id}/complete`)).json().id).toBe(up.id);
    const got = await api(alice, 'GET', `/v1/images/${up.id}`);
    expect(got.statusCode).toBe(200);
    expect(Buffer.from(await (await fetch(got.json().url)).arrayBuffer())).toEqual(img.png);

    // The same sha256 again: the existing image, no second object, no second record.
    const again = await api(alice, 'POST', '/v1/uploads', img.body);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ status: 'exists', id: up.id });
    expect((await rowsFor(alice.sub)).filter((r) => r.id === up.id)).toHaveLength(1);
    expect(await objectsUnder(userPrefix(alice.sub))).toEqual(
      [imageObjectKey(alice.sub, up.id), thumbObjectKey(alice.sub, up.id, 'image/webp')].sort(),
    );
  });

  it('asking again for a pending upload renews the same reservation (a killed uploader resumes)', async () => {
    const img = localImage('resume me');
    const first = (await api(alice, 'POST', '/v1/uploads', img.body)).json();
    expect(await putPresigned(first.image, img.png)).toBe(200);
    const second = await api(alice, 'POST', '/v1/uploads', img.body);
    expect(second.statusCode).toBe(201);
    expect(second.json().id).toBe(first.id);
    expect((await uploadsFor(alice.sub)).filter((u) => u.id === first.id)).toHaveLength(1);
    expect(await putPresigned(second.json().thumb, img.thumb)).toBe(200);
    expect((await api(alice, 'POST', `/v1/uploads/${first.id}/complete`)).statusCode).toBe(200);
    expect((await rowsFor(alice.sub)).filter((r) => r.id === first.id)).toHaveLength(1);
  });

  it('refuses bytes that do not match the declared size, and records nothing', async () => {
    const img = localImage('wrong size');
    const up = (await api(alice, 'POST', '/v1/uploads', img.body)).json();
    // Through the URL: the length is signed, so another length is refused by the (verifying) store.
    const short = img.png.subarray(0, 100);
    expect(
      await putPresigned(up.image, short, { ...up.image.headers, 'content-length': String(short.byteLength) }),
    ).toBe(403);
    // A store that did not check (as s3rver alone does not): the server's HEAD catches it.
    await h.raw.put(imageObjectKey(alice.sub, up.id), short, { contentType: 'image/png' });
    expect(await putPresigned(up.thumb, img.thumb)).toBe(200);
    const res = await api(alice, 'POST', `/v1/uploads/${up.id}/complete`);
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({
      code: 'UPLOAD_SIZE_MISMATCH',
      details: { objects: [{ object: 'image', declared: img.png.byteLength, actual: 100 }] },
    });
    expect((await rowsFor(alice.sub)).map((r) => r.id)).not.toContain(up.id);
    expect(await h.raw.head(imageObjectKey(alice.sub, up.id))).toBeNull();
    // The reservation stays: the right bytes complete it.
    expect(await putPresigned(up.image, img.png)).toBe(200);
    expect((await api(alice, 'POST', `/v1/uploads/${up.id}/complete`)).statusCode).toBe(200);
  });

  it('binds each URL to its key, method, type and checksum (verified by a SigV4-checking store)', async () => {
    const img = localImage('scoped');
    const up = (await api(alice, 'POST', '/v1/uploads', img.body)).json();
    const other = new URL(up.image.url);
    other.pathname = other.pathname.replace(alice.sub, bob.sub);
    expect(await putPresigned(up.image, img.png, up.image.headers, other.toString())).toBe(403);
    const sibling = new URL(up.image.url);
    // Another id of the same user: change the last character (to one it is not, or 1 run in 32 the
    // "sibling" was the URL's own key and the PUT rightly succeeded).
    const last = up.id.slice(-1) === '0' ? '1' : '0';
    sibling.pathname = sibling.pathname.replace(up.id, `${up.id.slice(0, -1)}${last}`);
    expect(await putPresigned(up.image, img.png, up.image.headers, sibling.toString())).toBe(403);
    expect(await putPresigned(up.image, img.png, { ...up.image.headers, 'content-type': 'text/html' })).toBe(403);
    const other256 = Buffer.alloc(32, 1).toString('base64');
    expect(await putPresigned(up.image, img.png, { ...up.image.headers, 'x-amz-checksum-sha256': other256 })).toBe(403);
    const { ['x-amz-checksum-sha256']: _dropped, ...noChecksum } = up.image.headers as Record<string, string>;
    expect(await putPresigned(up.image, img.png, noChecksum)).toBe(403);
    // The PUT URL does not read: GET with it is another method.
    expect((await fetch(up.image.url)).status).toBe(403);
    // A tampered signature.
    const forged = new URL(up.image.url);
    forged.searchParams.set('X-Amz-Signature', '0'.repeat(64));
    expect(await putPresigned(up.image, img.png, up.image.headers, forged.toString())).toBe(403);
    expect(await objectsUnder(`${userPrefix(bob.sub)}`)).toEqual([]);
    expect(await h.raw.head(imageObjectKey(alice.sub, up.id))).toBeNull();
    expect(await putPresigned(up.image, img.png)).toBe(200);
    expect(h.proxy.requests.some((r) => !r.ok && r.reason?.startsWith('SignatureDoesNotMatch'))).toBe(true);
  });

  it('sweeps abandoned uploads (objects and reservation) after they expire', async () => {
    const img = localImage('abandoned');
    const up = (await api(alice, 'POST', '/v1/uploads', img.body)).json();
    expect(await putPresigned(up.image, img.png)).toBe(200);
    // Not yet expired: nothing is swept.
    expect(await sweepExpiredUploads({ pool: h.t.systemPool, store: h.store })).toBe(0);
    const later = () => new Date(Date.now() + 16 * 60 * 1000);
    expect(await sweepExpiredUploads({ pool: h.t.systemPool, store: h.store, now: later })).toBeGreaterThanOrEqual(1);
    expect(await h.raw.head(imageObjectKey(alice.sub, up.id))).toBeNull();
    expect((await uploadsFor(alice.sub)).map((u) => u.id)).not.toContain(up.id);
    const res = await api(alice, 'POST', `/v1/uploads/${up.id}/complete`);
    expect(res.statusCode).toBe(404);
    expect((await rowsFor(alice.sub)).map((r) => r.id)).not.toContain(up.id);
  });
});

describe('storage quota', () => {
  it('answers 413 QUOTA_STORAGE_EXCEEDED before any byte moves, and /v1/me reports storage', async () => {
    const carol = await createTestUser();
    const me0 = (await api(carol, 'GET', '/v1/me')).json();
    expect(me0.storage).toEqual({ used: 0, limit: 2 * 1024 ** 3 });
    const img = localImage('fits');
    const up = (await api(carol, 'POST', '/v1/uploads', img.body)).json();
    // A reservation counts at once.
    expect((await api(carol, 'GET', '/v1/me')).json().storage.used).toBe(img.png.byteLength + img.thumb.byteLength);
    await putPresigned(up.image, img.png);
    await putPresigned(up.thumb, img.thumb);
    expect((await api(carol, 'POST', `/v1/uploads/${up.id}/complete`)).statusCode).toBe(200);
    const used = img.png.byteLength + img.thumb.byteLength;
    expect((await api(carol, 'GET', '/v1/me')).json().storage.used).toBe(used);

    // Fill the rest of the free plan's 2 GiB with big images of Carol's (as if uploaded earlier).
    const limit = 2 * 1024 ** 3;
    const filler = limit - used - 1000;
    await h.t.adminPool.query(
      `INSERT INTO images (id, user_id, width, height, metadata, size, sha256, thumb_mime, thumb_size)
       VALUES ($1, $2, 8, 8, $3, $4, $5, 'image/png', 0), ($6, $2, 8, 8, $3, $7, $8, 'image/png', 0)`,
      [
        'img_00000000000000000000A1',
        carol.sub,
        JSON.stringify(img.body.metadata),
        Math.floor(filler / 2),
        'a'.repeat(64),
        'img_00000000000000000000A2',
        filler - Math.floor(filler / 2),
        'b'.repeat(64),
      ],
    );
    const big = localImage('too much', 2000);
    const res = await api(carol, 'POST', '/v1/uploads', big.body);
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toMatchObject({
      code: 'QUOTA_STORAGE_EXCEEDED',
      details: { used: limit - 1000, limit, upgradeUrl: h.t.config.api.upgradeUrl },
    });
    expect(await uploadsFor(carol.sub)).toEqual([]);
    expect(await objectsUnder(userPrefix(carol.sub))).toHaveLength(2);
    // Deleting frees space: the same upload then fits.
    expect((await api(carol, 'DELETE', '/v1/images/img_00000000000000000000A1')).statusCode).toBe(204);
    expect((await api(carol, 'POST', '/v1/uploads', big.body)).statusCode).toBe(201);
    expect((await api(carol, 'GET', '/v1/me')).json().storage.used).toBeLessThan(limit);
  });
});

describe('uploads across users', () => {
  it('user B can neither complete, renew, nor learn of user A’s uploads and images', async () => {
    const img = localImage('alice only');
    const up = (await api(alice, 'POST', '/v1/uploads', img.body)).json();
    await putPresigned(up.image, img.png);
    await putPresigned(up.thumb, img.thumb);
    const bobBefore = (await api(bob, 'GET', '/v1/me')).json().storage;

    // Completing A's id: the same 404 as an id that never existed.
    const stolen = await api(bob, 'POST', `/v1/uploads/${up.id}/complete`);
    const never = await api(bob, 'POST', `/v1/uploads/img_0000000000000000000000/complete`);
    expect(stolen.statusCode).toBe(404);
    expect(stolen.json()).toEqual(never.json());

    // The same bytes from B: B's own reservation under B's prefix, never A's id or image.
    const mine = await api(bob, 'POST', '/v1/uploads', img.body);
    expect(mine.statusCode).toBe(201);
    expect(mine.json().id).not.toBe(up.id);
    expect(new URL(mine.json().image.url).pathname).toContain(`/users/${bob.sub}/`);
    expect(JSON.stringify(mine.json())).not.toContain(alice.sub);

    // A completes; B still cannot see it, and B's storage only counts B's reservation.
    expect((await api(alice, 'POST', `/v1/uploads/${up.id}/complete`)).statusCode).toBe(200);
    expect((await api(bob, 'GET', `/v1/images/${up.id}`)).statusCode).toBe(404);
    expect((await api(bob, 'POST', `/v1/uploads/${up.id}/complete`)).statusCode).toBe(404);
    const bobAfter = (await api(bob, 'GET', '/v1/me')).json().storage;
    expect(bobAfter.used - bobBefore.used).toBe(img.png.byteLength + img.thumb.byteLength);
    // A's completed image is still A's only row for those bytes.
    expect((await rowsFor(alice.sub)).filter((r) => r.id === up.id)).toHaveLength(1);
    expect((await rowsFor(bob.sub)).map((r) => r.id)).not.toContain(up.id);
  });

  it('needs a token', async () => {
    const img = localImage('anon');
    expect((await h.t.app.inject({ method: 'POST', url: '/v1/uploads', payload: img.body })).statusCode).toBe(401);
    expect(
      (await h.t.app.inject({ method: 'POST', url: '/v1/uploads/img_0000000000000000000000/complete' })).statusCode,
    ).toBe(401);
  });
});

describe('upload bad input', () => {
  const good = localImage('good').body;
  const cases: [string, unknown, string?][] = [
    ['sha256 not hex', { ...good, sha256: 'x'.repeat(64) }],
    ['sha256 upper case', { ...good, sha256: good.sha256.toUpperCase() }],
    ['size 0', { ...good, size: 0 }],
    ['size not an integer', { ...good, size: 1.5 }],
    ['size too large', { ...good, size: 101 * 1024 * 1024 }],
    ['thumb too large', { ...good, thumbSize: 3 * 1024 * 1024 }],
    ['a JPEG', { ...good, contentType: 'image/jpeg' }],
    ['a GIF thumbnail', { ...good, thumbContentType: 'image/gif' }],
    ['width 0', { ...good, width: 0 }],
    ['a key from the client', { ...good, key: 'users/someone/images/x.png' }],
    ['a user id from the client', { ...good, userId: 'someone' }],
    ['metadata without a prompt', { ...good, metadata: { ...good.metadata, positive_prompt: undefined } }],
    ['NUL in the prompt', { ...good, metadata: { ...good.metadata, positive_prompt: 'a\u0000b' } }],
    ['no body', undefined, 'BAD_REQUEST'],
  ];
  it.each(cases)('%s → 400, nothing reserved', async (_name, body, code = 'VALIDATION_FAILED') => {
    const before = (await uploadsFor(alice.sub)).length;
    const res = await h.t.app.inject({
      method: 'POST',
      url: '/v1/uploads',
      headers: { ...auth(alice), 'content-type': 'application/json' },
      payload: body === undefined ? '' : JSON.stringify(body),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe(code);
    expect((await uploadsFor(alice.sub)).length).toBe(before);
  });

  it.each(['nope', 'gen_0000000000000000000000', 'img_..%2F..%2Fx'])('complete with id %s → 400', async (id) => {
    const res = await api(alice, 'POST', `/v1/uploads/${id}/complete`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
  });
});

describe('OpenAPI', () => {
  it('documents the sync routes with their error bodies', async () => {
    const doc = (await h.t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths['/v1/uploads'].post.responses)).toEqual(
      expect.arrayContaining(['200', '201', '400', '401', '413']),
    );
    expect(Object.keys(doc.paths['/v1/uploads/{id}/complete'].post.responses)).toEqual(
      expect.arrayContaining(['200', '404', '409', '422']),
    );
    expect(doc.paths['/v1/sync/changes'].get).toBeDefined();
    expect(doc.paths['/v1/sync/edits'].post).toBeDefined();
  });
});
