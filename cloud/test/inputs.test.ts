/**
 * Starting images and masks (issue 15): POST /v1/inputs, /v1/inputs/:id/complete, GET /v1/inputs/:id
 * and naming inputs in POST /v1/generations — on real Postgres (RLS), cognito-local and s3rver behind
 * the SigV4-verifying proxy. Server-built keys, URLs bound to key, length and checksum, limits before
 * anything is reserved, bytes checked before an input is ready, user B unable to read, complete or
 * name user A's inputs (404, no reservation), and the sweep.
 */
import { randomBytes } from 'node:crypto';
import { MAX_LIVE_INPUTS, newId } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inputObjectKey } from '../src/storage/keys.ts';
import { fetchRequestInput, sweepExpiredInputs } from '../src/inputs/service.ts';
import { inputBody, maskPng, sha256, startPng, uploadInput } from './inputs-support.ts';
import { api as apiFor, localImage, putPresigned, startSyncHarness, type SyncHarness } from './sync-support.ts';
import { createTestUser, type TestUser } from './support/index.ts';

let h: SyncHarness;
let api: ReturnType<typeof apiFor>;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  h = await startSyncHarness();
  api = apiFor(h.t);
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  for (const u of [alice, bob]) expect((await api(u, 'GET', '/v1/me')).statusCode).toBe(200);
});
afterAll(async () => {
  await h?.close();
});

const inputsOf = async (userId: string) =>
  (
    await h.t.adminPool.query<{ id: string; status: string }>(
      'SELECT id, status FROM inputs WHERE user_id = $1 ORDER BY id',
      [userId],
    )
  ).rows;

/** Quota used, ledger rows and generation rows: all must stay 0 when a request is refused. */
async function charged(userId: string) {
  const r = await h.t.adminPool.query<{ used: number; ledger: number; gens: number }>(
    `SELECT (SELECT coalesce(sum(used), 0)::int FROM usage_periods WHERE user_id = $1) AS used,
            (SELECT count(*)::int FROM usage_ledger WHERE user_id = $1) AS ledger,
            (SELECT count(*)::int FROM generations WHERE user_id = $1) AS gens`,
    [userId],
  );
  return r.rows[0]!;
}

async function objectExists(userId: string, id: string) {
  return (await h.raw.head(inputObjectKey(userId, id, 'image/png'))) !== null;
}

const gen = (u: TestUser, extra: Record<string, unknown>) =>
  api(u, 'POST', '/v1/generations', { prompt: 'a red square', width: 64, height: 64, steps: 2, ...extra });

describe('POST /v1/inputs', () => {
  it('reserves an input and signs a PUT for exactly users/{me}/inputs/{id}.png, bound to length and checksum', async () => {
    const png = startPng();
    const res = await api(alice, 'POST', '/v1/inputs', inputBody(png, 'init'));
    expect(res.statusCode).toBe(201);
    const out = res.json();
    expect(out.inputId).toMatch(/^inp_[0-9A-Z]{22}$/);
    expect(out.input).toMatchObject({ id: out.inputId, status: 'pending', purpose: 'init', width: 64, height: 64 });
    expect(new URL(out.uploadUrl).pathname).toBe(`/${h.s3.bucket}/users/${alice.sub}/inputs/${out.inputId}.png`);
    expect(out.upload.url).toBe(out.uploadUrl);
    const lifetime = Date.parse(out.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(0);
    expect(lifetime).toBeLessThanOrEqual(15 * 60 * 1000);
    expect(Number(new URL(out.uploadUrl).searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
    expect(new URL(out.uploadUrl).searchParams.get('X-Amz-SignedHeaders')).toBe(
      'content-length;content-type;host;x-amz-checksum-sha256',
    );

    // Not uploaded yet: completing says so and records nothing.
    const early = await api(alice, 'POST', `/v1/inputs/${out.inputId}/complete`);
    expect(early.statusCode).toBe(409);
    expect(early.json().error.code).toBe('UPLOAD_INCOMPLETE');

    // The URL is for this key only: another key (Bob's prefix), or other bytes, are refused by the
    // verifying proxy and never reach the bucket.
    const elsewhere = out.uploadUrl.replace(`/users/${alice.sub}/`, `/users/${bob.sub}/`);
    expect(await putPresigned(out.upload, png, out.upload.headers, elsewhere)).toBe(403);
    const other = startPng(64, 64, 3);
    expect(other.byteLength).not.toBe(png.byteLength + 1);
    expect(await putPresigned(out.upload, Buffer.concat([png, Buffer.from([0])]))).toBe(403);
    expect(await h.raw.head(inputObjectKey(bob.sub, out.inputId, 'image/png'))).toBeNull();
    expect(await objectExists(alice.sub, out.inputId)).toBe(false);

    expect(await putPresigned(out.upload, png)).toBe(200);
    const done = await api(alice, 'POST', `/v1/inputs/${out.inputId}/complete`);
    expect(done.statusCode).toBe(200);
    expect(done.json()).toMatchObject({ id: out.inputId, status: 'ready', sha256: sha256(png) });
    // Retained for the configured period (7 days by default), not the URL's 15 minutes.
    expect(Date.parse(done.json().expiresAt) - Date.now()).toBeGreaterThan(6 * 24 * 3600 * 1000);
    expect((await api(alice, 'POST', `/v1/inputs/${out.inputId}/complete`)).json().status).toBe('ready');
    const got = await api(alice, 'GET', `/v1/inputs/${out.inputId}`);
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(done.json());
  });

  it.each([
    [{ contentType: 'image/gif' }, 415, 'INPUT_IMAGE_UNSUPPORTED_TYPE'],
    [{ byteLength: 32 * 1024 * 1024 + 1 }, 413, 'INPUT_TOO_LARGE'],
    [{ width: 4097 }, 422, 'INPUT_DIMENSIONS_INVALID'],
    [{ height: 4 }, 422, 'INPUT_DIMENSIONS_INVALID'],
    [{ width: 0 }, 400, 'VALIDATION_FAILED'],
    [{ sha256: 'xyz' }, 400, 'VALIDATION_FAILED'],
  ])('refuses %o with %i %s before anything is reserved', async (over, status, code) => {
    const u = await createTestUser();
    const res = await api(u, 'POST', '/v1/inputs', { ...inputBody(startPng(), 'init'), ...over });
    expect(res.statusCode).toBe(status);
    expect(res.json().error.code).toBe(code);
    expect(await inputsOf(u.sub)).toEqual([]);
  });

  it('the same file asked for again is the same input (a resent generation names the same id)', async () => {
    const png = startPng(64, 64, 30);
    const first = (await api(alice, 'POST', '/v1/inputs', inputBody(png, 'init'))).json();
    const again = (await api(alice, 'POST', '/v1/inputs', inputBody(png, 'init'))).json();
    expect(again.inputId).toBe(first.inputId);
    expect(again.input.status).toBe('pending');
    expect(await putPresigned(again.upload, png)).toBe(200);
    expect((await api(alice, 'POST', `/v1/inputs/${first.inputId}/complete`)).statusCode).toBe(200);
    const ready = (await api(alice, 'POST', '/v1/inputs', inputBody(png, 'init'))).json();
    expect(ready).toMatchObject({ inputId: first.inputId, input: { status: 'ready' } });
    // Another role, or another user, is another input.
    expect((await api(alice, 'POST', '/v1/inputs', inputBody(png, 'mask'))).json().inputId).not.toBe(first.inputId);
    expect((await api(bob, 'POST', '/v1/inputs', inputBody(png, 'init'))).json().inputId).not.toBe(first.inputId);
  });

  it('caps the inputs one user holds at once: 429 INPUT_COUNT_EXCEEDED, nothing reserved', async () => {
    const u = await createTestUser();
    expect((await api(u, 'GET', '/v1/me')).statusCode).toBe(200);
    // MAX_LIVE_INPUTS − 1 already held (pending, unexpired).
    await h.t.adminPool.query(
      `INSERT INTO inputs (id, user_id, purpose, content_type, byte_length, sha256, width, height, expires_at)
       SELECT 'inp_' || lpad(g::text, 22, '0'), $1, 'init', 'image/png', 100, repeat('a', 64), 64, 64, now() + interval '1 hour'
         FROM generate_series(1, $2::int - 1) g`,
      [u.sub, MAX_LIVE_INPUTS],
    );
    expect((await api(u, 'POST', '/v1/inputs', inputBody(startPng(64, 64, 40), 'init'))).statusCode).toBe(201);
    const over = await api(u, 'POST', '/v1/inputs', inputBody(startPng(64, 64, 41), 'init'));
    expect(over.statusCode).toBe(429);
    expect(over.json().error).toMatchObject({ code: 'INPUT_COUNT_EXCEEDED', details: { limit: MAX_LIVE_INPUTS } });
    expect(await inputsOf(u.sub)).toHaveLength(MAX_LIVE_INPUTS);
    // The same file as one already held is not a new input, so it is still answered.
    expect((await api(u, 'POST', '/v1/inputs', inputBody(startPng(64, 64, 40), 'init'))).statusCode).toBe(201);
  });

  it('refuses a key or user id in the body (the server builds the key)', async () => {
    const res = await api(alice, 'POST', '/v1/inputs', {
      ...inputBody(startPng(), 'init'),
      key: `users/${bob.sub}/inputs/x.png`,
    });
    expect(res.statusCode).toBe(400);
  });
});

describe('POST /v1/inputs/:id/complete checks the bytes', () => {
  async function reserve(u: TestUser, bytes: Buffer, over: Record<string, unknown> = {}) {
    const res = await api(u, 'POST', '/v1/inputs', { ...inputBody(bytes, 'init'), ...over });
    expect(res.statusCode).toBe(201);
    return res.json() as { inputId: string; upload: { url: string; headers: Record<string, string> } };
  }

  it('another size in the bucket than declared: 422 UPLOAD_SIZE_MISMATCH, object removed, still pending', async () => {
    const png = startPng(64, 64, 20);
    const r = await reserve(alice, png);
    // A client (or a proxy) that got other bytes into the key: put them behind the API's back.
    await h.raw.put(inputObjectKey(alice.sub, r.inputId, 'image/png'), startPng(96, 96), { contentType: 'image/png' });
    const res = await api(alice, 'POST', `/v1/inputs/${r.inputId}/complete`);
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe('UPLOAD_SIZE_MISMATCH');
    expect(await objectExists(alice.sub, r.inputId)).toBe(false);
    expect((await api(alice, 'GET', `/v1/inputs/${r.inputId}`)).json().status).toBe('pending');
  });

  it('bytes that are not an image: 415, a damaged PNG: 422 INPUT_IMAGE_UNREADABLE, a size lie: 422', async () => {
    const junk = randomBytes(2000);
    const a = await reserve(alice, junk);
    expect(await putPresigned(a.upload as never, junk)).toBe(200);
    const ra = await api(alice, 'POST', `/v1/inputs/${a.inputId}/complete`);
    expect([ra.statusCode, ra.json().error.code]).toEqual([415, 'INPUT_IMAGE_UNSUPPORTED_TYPE']);
    expect(await objectExists(alice.sub, a.inputId)).toBe(false);

    const broken = Buffer.concat([startPng().subarray(0, 60), randomBytes(200)]);
    const b = await reserve(alice, broken);
    expect(await putPresigned(b.upload as never, broken)).toBe(200);
    const rb = await api(alice, 'POST', `/v1/inputs/${b.inputId}/complete`);
    expect([rb.statusCode, rb.json().error.code]).toEqual([422, 'INPUT_IMAGE_UNREADABLE']);

    const png = startPng(64, 64, 21);
    const c = await reserve(alice, png, { width: 32, height: 32 });
    expect(await putPresigned(c.upload as never, png)).toBe(200);
    const rc = await api(alice, 'POST', `/v1/inputs/${c.inputId}/complete`);
    expect(rc.statusCode).toBe(422);
    expect(rc.json().error).toMatchObject({
      code: 'INPUT_DIMENSIONS_MISMATCH',
      details: { declared: { width: 32, height: 32 }, actual: { width: 64, height: 64 } },
    });
    expect(await objectExists(alice.sub, c.inputId)).toBe(false);

    // A PNG declared as JPEG.
    const d = await reserve(alice, png, { contentType: 'image/jpeg' });
    await h.raw.put(inputObjectKey(alice.sub, d.inputId, 'image/jpeg'), png, { contentType: 'image/jpeg' });
    const rd = await api(alice, 'POST', `/v1/inputs/${d.inputId}/complete`);
    expect([rd.statusCode, rd.json().error.code]).toEqual([415, 'INPUT_IMAGE_UNSUPPORTED_TYPE']);

    for (const id of [a.inputId, b.inputId, c.inputId, d.inputId])
      expect((await api(alice, 'GET', `/v1/inputs/${id}`)).json().status).toBe('pending');
  });
});

describe('cross-user', () => {
  it('user B can neither read, complete nor name user A’s input; nothing is reserved', async () => {
    const png = startPng(64, 64, 1);
    const pending = (await api(alice, 'POST', '/v1/inputs', inputBody(png, 'init'))).json();
    const ready = await uploadInput(h.t.app, alice, startPng(64, 64, 2), 'init');
    const aliceMask = await uploadInput(h.t.app, alice, maskPng(), 'mask');
    const unknown = newId('inp');

    for (const id of [pending.inputId, ready, unknown]) {
      const get = await api(bob, 'GET', `/v1/inputs/${id}`);
      expect([get.statusCode, get.json().error.code]).toEqual([404, 'NOT_FOUND']);
      const complete = await api(bob, 'POST', `/v1/inputs/${id}/complete`);
      expect([complete.statusCode, complete.json().error.code]).toEqual([404, 'NOT_FOUND']);
    }
    // Alice's pending input is still pending (Bob's complete did not touch it).
    expect((await api(alice, 'GET', `/v1/inputs/${pending.inputId}`)).json().status).toBe('pending');

    // Alice's gallery image (an uploaded one) is hers only, too.
    const img = localImage('alice only');
    const up = (await api(alice, 'POST', '/v1/uploads', img.body)).json();
    expect(await putPresigned(up.image, img.png)).toBe(200);
    expect(await putPresigned(up.thumb, img.thumb)).toBe(200);
    expect((await api(alice, 'POST', `/v1/uploads/${up.id}/complete`)).statusCode).toBe(200);

    const bobMask = await uploadInput(h.t.app, bob, maskPng(), 'mask');
    const bobInit = await uploadInput(h.t.app, bob, startPng(64, 64, 4), 'init');
    for (const body of [
      { initImage: ready },
      { initImage: unknown },
      { initImage: up.id },
      { initImage: ready, mask: bobMask },
      { initImage: bobInit, mask: aliceMask },
    ]) {
      const res = await gen(bob, body);
      expect(res.statusCode).toBe(404);
      // The same answer for "someone else's" and "does not exist": nothing to learn.
      expect(res.json().error.code).toBe('INPUT_IMAGE_NOT_FOUND');
    }
    expect(await charged(bob.sub)).toEqual({ used: 0, ledger: 0, gens: 0 });

    // Alice herself may name her live gallery image; once she deletes it, it is gone for this too.
    expect((await gen(alice, { initImage: up.id, seed: 3 })).statusCode).toBe(202);
    expect((await api(alice, 'DELETE', `/v1/images/${up.id}`)).statusCode).toBe(204);
    const deleted = await gen(alice, { initImage: up.id, seed: 3 });
    expect([deleted.statusCode, deleted.json().error.code]).toEqual([404, 'INPUT_IMAGE_NOT_FOUND']);
  });
});

describe('POST /v1/generations naming inputs', () => {
  it('refuses bad references before the quota is touched, and accepts the user’s own', async () => {
    const u = await createTestUser();
    expect((await api(u, 'GET', '/v1/me')).statusCode).toBe(200);
    const init = await uploadInput(h.t.app, u, startPng(), 'init');
    const mask = await uploadInput(h.t.app, u, maskPng(), 'mask');
    const bigMaskPng = maskPng(96, 96);
    const bigMask = await uploadInput(h.t.app, u, bigMaskPng, 'mask', { width: 96, height: 96 });
    const pending = (await api(u, 'POST', '/v1/inputs', inputBody(startPng(64, 64, 6), 'init'))).json().inputId;

    const cases: [Record<string, unknown>, number, string][] = [
      [{ mask }, 400, 'VALIDATION_FAILED'],
      [{ strength: 0.5 }, 400, 'VALIDATION_FAILED'],
      [{ initImage: mask }, 422, 'INPUT_PURPOSE_MISMATCH'],
      [{ initImage: init, mask: init }, 422, 'INPUT_PURPOSE_MISMATCH'],
      [{ initImage: init, mask: bigMask }, 422, 'INPUT_IMAGE_SIZE_MISMATCH'],
      [{ initImage: pending }, 409, 'UPLOAD_INCOMPLETE'],
      [{ initImage: 'in.png' }, 404, 'INPUT_IMAGE_NOT_FOUND'],
    ];
    for (const [body, status, code] of cases) {
      const res = await gen(u, body);
      expect([res.statusCode, res.json().error.code], JSON.stringify(body)).toEqual([status, code]);
    }
    expect(await charged(u.sub)).toEqual({ used: 0, ledger: 0, gens: 0 });

    const ok = await gen(u, { initImage: init, mask, strength: 0.6, seed: 1 });
    expect(ok.statusCode).toBe(202);
    expect(ok.json().params).toMatchObject({ initImage: init, mask, strength: 0.6 });
    expect((await charged(u.sub)).used).toBe(1);
  });
});

describe('the worker’s fetch', () => {
  it('gets the owner’s bytes, and a swept or foreign input is INPUT_IMAGE_NOT_FOUND, not retried', async () => {
    const png = startPng(64, 64, 50);
    const id = await uploadInput(h.t.app, alice, png, 'init');
    const deps = { pool: h.t.systemPool, store: h.store };
    expect(Buffer.from(await fetchRequestInput(deps, alice.sub, 'initImage', id))).toEqual(png);
    const foreign = await fetchRequestInput(deps, bob.sub, 'initImage', id).catch((e: unknown) => e);
    expect(foreign).toMatchObject({ code: 'INPUT_IMAGE_NOT_FOUND', retryable: false });
    await h.raw.delete([inputObjectKey(alice.sub, id, 'image/png')]);
    const gone = await fetchRequestInput(deps, alice.sub, 'initImage', id).catch((e: unknown) => e);
    expect(gone).toMatchObject({ code: 'INPUT_IMAGE_NOT_FOUND', retryable: false });
  });
});

describe('the input sweep', () => {
  it('removes expired inputs and their objects, but keeps one a queued generation still needs', async () => {
    const u = await createTestUser();
    expect((await api(u, 'GET', '/v1/me')).statusCode).toBe(200);
    const kept = await uploadInput(h.t.app, u, startPng(64, 64, 7), 'init');
    const used = await uploadInput(h.t.app, u, startPng(64, 64, 2), 'init');
    const abandoned = (await api(u, 'POST', '/v1/inputs', inputBody(startPng(64, 64, 3), 'init'))).json().inputId;
    expect((await gen(u, { initImage: used, seed: 2 })).statusCode).toBe(202);

    // Nothing is due yet.
    expect(await sweepExpiredInputs({ pool: h.t.systemPool, store: h.store })).toBe(0);
    expect((await inputsOf(u.sub)).map((r) => r.id).sort()).toEqual([kept, used, abandoned].sort());

    // Eight days on: the abandoned reservation and the idle ready input go, with their bytes; the
    // one the queued generation names stays until that generation ends.
    const later = () => new Date(Date.now() + 8 * 24 * 3600 * 1000);
    expect(await sweepExpiredInputs({ pool: h.t.systemPool, store: h.store, now: later })).toBeGreaterThanOrEqual(2);
    expect((await inputsOf(u.sub)).map((r) => r.id)).toEqual([used]);
    expect(await objectExists(u.sub, kept)).toBe(false);
    expect(await objectExists(u.sub, used)).toBe(true);
    expect((await api(u, 'GET', `/v1/inputs/${kept}`)).statusCode).toBe(404);
    const gone = await gen(u, { initImage: kept });
    expect([gone.statusCode, gone.json().error.code]).toEqual([404, 'INPUT_IMAGE_NOT_FOUND']);
  });
});
