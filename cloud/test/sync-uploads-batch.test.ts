/**
 * POST /v1/uploads/batch and POST /v1/uploads/complete (decision 0146) on real Postgres (RLS),
 * cognito-local and s3rver behind a SigV4-verifying proxy: per-item answers in request order, one
 * bad item never failing the others, the storage quota counted for the whole batch before any URL
 * is handed out, the same sha256 twice (in one batch, or a batch retried after a crash) ending as
 * one object and one record, and user B learning nothing of user A's ids.
 */
import type { CreateUploadBody } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageObjectKey, thumbObjectKey, userPrefix } from '../src/storage/keys.ts';
import { auth, createTestUser, type TestUser } from './support/index.ts';
import {
  localImage,
  putPresigned,
  startSyncPair,
  type LocalImage,
  type SyncApi,
  type SyncHarness,
} from './sync-support.ts';

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
    await h.t.adminPool.query<{ id: string; sha256: string }>('SELECT id, sha256 FROM images WHERE user_id = $1', [
      userId,
    ])
  ).rows;
const uploadsFor = async (userId: string) =>
  (
    await h.t.adminPool.query<{ id: string; sha256: string }>('SELECT id, sha256 FROM uploads WHERE user_id = $1', [
      userId,
    ])
  ).rows;
async function objectsUnder(prefix: string): Promise<string[]> {
  const res = await fetch(`${h.s3.endpoint}/${h.s3.bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  return [...(await res.text()).matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]!).sort();
}
const reserve = (u: TestUser, items: CreateUploadBody[]) => api(u, 'POST', '/v1/uploads/batch', { items });
const complete = (u: TestUser, ids: string[]) => api(u, 'POST', '/v1/uploads/complete', { ids });
async function putBoth(up: { image: never; thumb: never }, img: LocalImage) {
  expect(await putPresigned(up.image, img.png)).toBe(200);
  expect(await putPresigned(up.thumb, img.thumb)).toBe(200);
}

describe('batch uploads', () => {
  it('reserves, and completes, many images per call with an answer per item in request order', async () => {
    const done = localImage('already up');
    const single = (await api(alice, 'POST', '/v1/uploads', done.body)).json();
    await putBoth(single, done);
    expect((await api(alice, 'POST', `/v1/uploads/${single.id}/complete`)).statusCode).toBe(200);

    const [a, b, c] = [localImage('batch a'), localImage('batch b'), localImage('batch c')];
    const res = await reserve(alice, [a.body, done.body, b.body, c.body]);
    expect(res.statusCode).toBe(200);
    const r = res.json().results;
    expect(r.map((x: { status: string }) => x.status)).toEqual(['pending', 'exists', 'pending', 'pending']);
    expect(r[1]).toMatchObject({ id: single.id, image: { id: single.id, sha256: done.body.sha256 } });
    for (const x of [r[0], r[2], r[3]])
      expect(new URL(x.image.url).pathname).toBe(`/${h.s3.bucket}/${imageObjectKey(alice.sub, x.id)}`);
    expect(new Set([r[0].id, r[2].id, r[3].id]).size).toBe(3);

    // a and c are in the bucket, b only half: b fails on its own, a and c are recorded.
    await putBoth(r[0], a);
    await putBoth(r[3], c);
    expect(await putPresigned(r[2].image, b.png)).toBe(200);
    const fin = await complete(alice, [r[0].id, r[2].id, r[3].id]);
    expect(fin.statusCode).toBe(200);
    const f = fin.json().results;
    expect(f[0]).toMatchObject({ status: 'completed', id: r[0].id, image: { id: r[0].id, sha256: a.body.sha256 } });
    expect(f[1]).toMatchObject({
      status: 'failed',
      id: r[2].id,
      error: { code: 'UPLOAD_INCOMPLETE', details: { missing: ['thumb'] } },
    });
    expect(f[2]).toMatchObject({ status: 'completed', id: r[3].id });
    expect(f[0].image.thumbUrl).toBeTruthy();
    const ids = (await rowsFor(alice.sub)).map((x) => x.id);
    expect(ids).toEqual(expect.arrayContaining([r[0].id, r[3].id]));
    expect(ids).not.toContain(r[2].id);
    expect((await uploadsFor(alice.sub)).map((x) => x.id)).toContain(r[2].id);

    // b's thumbnail arrives: completing it (and a again) records b once, a stays one record.
    expect(await putPresigned(r[2].thumb, b.thumb)).toBe(200);
    const again = (await complete(alice, [r[2].id, r[0].id])).json().results;
    expect(again.map((x: { status: string }) => x.status)).toEqual(['completed', 'completed']);
    expect(again[1].id).toBe(r[0].id);
    const rows = await rowsFor(alice.sub);
    for (const img of [a, b, c]) expect(rows.filter((x) => x.sha256 === img.body.sha256)).toHaveLength(1);
  });

  it('refuses a size mismatch per item and removes only that object', async () => {
    const [good, bad] = [localImage('good size'), localImage('bad size')];
    const r = (await reserve(alice, [good.body, bad.body])).json().results;
    await putBoth(r[0], good);
    await h.raw.put(imageObjectKey(alice.sub, r[1].id), bad.png.subarray(0, 100), { contentType: 'image/png' });
    expect(await putPresigned(r[1].thumb, bad.thumb)).toBe(200);
    const f = (await complete(alice, [r[1].id, r[0].id])).json().results;
    expect(f[0]).toMatchObject({
      status: 'failed',
      error: {
        code: 'UPLOAD_SIZE_MISMATCH',
        details: { objects: [{ object: 'image', declared: bad.png.byteLength, actual: 100 }] },
      },
    });
    expect(f[1]).toMatchObject({ status: 'completed', id: r[0].id });
    expect(await h.raw.head(imageObjectKey(alice.sub, r[1].id))).toBeNull();
    expect(await h.raw.head(thumbObjectKey(alice.sub, r[1].id, 'image/webp'))).not.toBeNull();
    expect((await rowsFor(alice.sub)).map((x) => x.id)).not.toContain(r[1].id);
  });

  it('the same sha256 twice in a batch, and a batch retried after a crash, end as one object and one record', async () => {
    const [x, y] = [localImage('twice'), localImage('retried')];
    const first = (await reserve(alice, [x.body, y.body, x.body])).json().results;
    expect(first[0].id).toBe(first[2].id);
    expect((await uploadsFor(alice.sub)).filter((u) => u.sha256 === x.body.sha256)).toHaveLength(1);
    // The uploader dies after the image PUTs; on restart it sends the same batch again.
    expect(await putPresigned(first[0].image, x.png)).toBe(200);
    expect(await putPresigned(first[1].image, y.png)).toBe(200);
    const second = (await reserve(alice, [x.body, y.body])).json().results;
    expect(second.map((s: { id: string }) => s.id)).toEqual([first[0].id, first[1].id]);
    expect(second.map((s: { status: string }) => s.status)).toEqual(['pending', 'pending']);
    expect(await putPresigned(second[0].thumb, x.thumb)).toBe(200);
    expect(await putPresigned(second[1].thumb, y.thumb)).toBe(200);
    // Completed twice in one call, then the whole call again (its answer was lost).
    const ids = [first[0].id, first[1].id, first[0].id];
    const done = (await complete(alice, ids)).json().results;
    expect(done.map((d: { status: string; id: string }) => `${d.status} ${d.id}`)).toEqual(
      ids.map((i) => `completed ${i}`),
    );
    expect((await complete(alice, ids)).json().results.map((d: { status: string }) => d.status)).toEqual([
      'completed',
      'completed',
      'completed',
    ]);
    const rows = await rowsFor(alice.sub);
    expect(rows.filter((r) => r.sha256 === x.body.sha256).map((r) => r.id)).toEqual([first[0].id]);
    expect(rows.filter((r) => r.sha256 === y.body.sha256).map((r) => r.id)).toEqual([first[1].id]);
    for (const id of [first[0].id, first[1].id])
      expect(await objectsUnder(`${userPrefix(alice.sub)}images/${id}`)).toEqual([imageObjectKey(alice.sub, id)]);
    // And once recorded, the same bytes in a batch are `exists`.
    const third = (await reserve(alice, [y.body])).json().results;
    expect(third[0]).toMatchObject({ status: 'exists', id: first[1].id });
  });
});

describe('batch uploads and the storage quota', () => {
  it('counts the whole batch before any URL is handed out; items past the limit are refused, the rest reserved', async () => {
    const dave = await createTestUser();
    expect((await api(dave, 'GET', '/v1/me')).statusCode).toBe(200);
    const limit = 2 * 1024 ** 3;
    // Dave holds all but 10,000 bytes.
    await h.t.adminPool.query(
      `INSERT INTO images (id, user_id, width, height, metadata, size, sha256, thumb_mime, thumb_size)
       VALUES ('img_00000000000000000000D1', $1, 8, 8, $2, $3, $4, 'image/png', 0)`,
      [dave.sub, JSON.stringify(localImage('x').body.metadata), limit - 10_000, 'd'.repeat(64)],
    );
    // 4,396 + 4,396 fit (8,792); the next 4,396 does not; a small one after it still fits.
    const [p, q, r, s] = [localImage('p'), localImage('q'), localImage('r'), localImage('s', 600)];
    const res = await reserve(dave, [p.body, q.body, r.body, s.body]);
    expect(res.statusCode).toBe(200);
    const out = res.json().results;
    expect(out.map((o: { status: string }) => o.status)).toEqual(['pending', 'pending', 'refused', 'pending']);
    expect(out[2].error).toMatchObject({
      code: 'QUOTA_STORAGE_EXCEEDED',
      details: { used: limit - 10_000 + 2 * 4396, limit, requested: 4396, upgradeUrl: h.t.config.api.upgradeUrl },
    });
    const reserved = (await uploadsFor(dave.sub)).map((u) => u.sha256).sort();
    expect(reserved).toEqual([p.body.sha256, q.body.sha256, s.body.sha256].sort());
    expect(await objectsUnder(userPrefix(dave.sub))).toEqual([]);
    expect((await api(dave, 'GET', '/v1/me')).json().storage.used).toBe(limit - 10_000 + 2 * 4396 + 900);
    // The single route says the same for the refused one.
    const one = await api(dave, 'POST', '/v1/uploads', r.body);
    expect(one.statusCode).toBe(413);
    expect(one.json().error.code).toBe('QUOTA_STORAGE_EXCEEDED');
    // Renewing the open reservations in a batch does not count them twice.
    const renewed = (await reserve(dave, [p.body, q.body, s.body])).json().results;
    expect(renewed.map((o: { status: string }) => o.status)).toEqual(['pending', 'pending', 'pending']);
  });
});

describe('batch uploads across users', () => {
  it('user B completing A’s ids gets per-item NOT_FOUND, the same as ids that never existed, and A’s uploads stay', async () => {
    const [one, two] = [localImage('alice batch 1'), localImage('alice batch 2')];
    const r = (await reserve(alice, [one.body, two.body])).json().results;
    await putBoth(r[0], one);
    await putBoth(r[1], two);
    const never = 'img_0000000000000000000000';
    const res = await complete(bob, [r[0].id, never, r[1].id]);
    expect(res.statusCode).toBe(200);
    const out = res.json().results;
    expect(out.map((o: { status: string }) => o.status)).toEqual(['failed', 'failed', 'failed']);
    // Only the id differs: the same code, message and (no) details as for an id that never existed.
    for (const o of out) expect(o.error).toEqual(out[1].error);
    expect(out[1].error.code).toBe('NOT_FOUND');
    expect(JSON.stringify(out)).not.toContain(alice.sub);
    expect((await rowsFor(bob.sub)).map((x) => x.id)).not.toContain(r[0].id);
    expect((await rowsFor(alice.sub)).map((x) => x.id)).not.toContain(r[0].id);
    expect((await uploadsFor(alice.sub)).map((x) => x.id)).toEqual(expect.arrayContaining([r[0].id, r[1].id]));

    // The same bytes from B: B's own reservations under B's prefix, never A's ids.
    const mine = (await reserve(bob, [one.body, two.body])).json().results;
    for (const [i, m] of mine.entries()) {
      expect(m.status).toBe('pending');
      expect(m.id).not.toBe(r[i].id);
      expect(new URL(m.image.url).pathname).toContain(`/users/${bob.sub}/`);
    }
    expect(JSON.stringify(mine)).not.toContain(alice.sub);

    // A completes hers; B asking again still learns nothing.
    expect((await complete(alice, [r[0].id, r[1].id])).json().results.map((o: { status: string }) => o.status)).toEqual(
      ['completed', 'completed'],
    );
    const later = (await complete(bob, [r[0].id])).json().results;
    expect(later[0]).toEqual({ ...out[1], id: r[0].id });
  });

  it('needs a token', async () => {
    const img = localImage('anon');
    for (const [url, payload] of [
      ['/v1/uploads/batch', { items: [img.body] }],
      ['/v1/uploads/complete', { ids: ['img_0000000000000000000000'] }],
    ] as const)
      expect((await h.t.app.inject({ method: 'POST', url, payload })).statusCode).toBe(401);
  });
});

describe('batch upload bad input', () => {
  const good = localImage('good').body;
  const cases: [string, string, unknown][] = [
    ['no items', '/v1/uploads/batch', { items: [] }],
    ['101 items', '/v1/uploads/batch', { items: Array.from({ length: 101 }, () => good) }],
    ['not a list', '/v1/uploads/batch', { items: good }],
    ['one item with a bad sha256 among good ones', '/v1/uploads/batch', { items: [good, { ...good, sha256: 'x' }] }],
    ['one item with a key from the client', '/v1/uploads/batch', { items: [{ ...good, key: 'users/x/images/y.png' }] }],
    ['a user id beside the items', '/v1/uploads/batch', { items: [good], userId: 'someone' }],
    ['no ids', '/v1/uploads/complete', { ids: [] }],
    ['101 ids', '/v1/uploads/complete', { ids: Array.from({ length: 101 }, () => 'img_0000000000000000000000') }],
    ['a generation id', '/v1/uploads/complete', { ids: ['gen_0000000000000000000000'] }],
    ['a path in an id', '/v1/uploads/complete', { ids: ['img_../../x'] }],
  ];
  it.each(cases)('%s → 400 VALIDATION_FAILED, nothing reserved or recorded', async (_name, url, body) => {
    const [uploads, rows] = [(await uploadsFor(alice.sub)).length, (await rowsFor(alice.sub)).length];
    const res = await h.t.app.inject({
      method: 'POST',
      url,
      headers: { ...auth(alice), 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
    expect((await uploadsFor(alice.sub)).length).toBe(uploads);
    expect((await rowsFor(alice.sub)).length).toBe(rows);
  });
});

describe('OpenAPI', () => {
  it('documents the batch routes', async () => {
    const doc = (await h.t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const p of ['/v1/uploads/batch', '/v1/uploads/complete'])
      expect(Object.keys(doc.paths[p].post.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '429']));
    expect(doc.paths['/v1/uploads/{id}/complete'].post).toBeDefined();
  });
});
