/**
 * API keys (issue 16) against the real stack (Postgres with RLS, cognito-local, s3rver): created
 * once and stored hashed, scopes enforced per route with stable codes, managed by sessions only,
 * forged and malformed keys refused, revocation on the next request, the per-key rate limit, no
 * key in any log line, and another user's key never reaching this user's things.
 */
import { Writable } from 'node:stream';
import { API_KEY_SCOPES, newId, type ApiKeyScope, type ImageId } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newApiKey } from '../src/api-keys/key-format.ts';
import { insertImages } from '../src/db/gallery/images-repository.ts';
import { withSystemTx } from '../src/db/tx.ts';
import { createLogger } from '../src/logger.ts';
import { startTestS3, type TestS3 } from './support/s3.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestDatabase,
  type TestUser,
} from './support/index.ts';
import { fixtureMetadata } from './support/metadata.ts';

let t: TestApp;
let s3: TestS3;
let db: TestDatabase;
let alice: TestUser;
let bob: TestUser;
const logLines: string[] = [];

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const call = (headers: Record<string, string>, method: Method, url: string, payload?: unknown) =>
  t.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });

async function createKey(u: TestUser, scopes: ApiKeyScope[], name = 'script') {
  const res = await call(auth(u), 'POST', '/v1/api-keys', { name, scopes });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: string; key: string; prefix: string; scopes: ApiKeyScope[] };
}

async function seedImage(u: TestUser, prompt: string): Promise<ImageId> {
  const id = newId('img');
  await withSystemTx(t.systemPool, (tx) =>
    insertImages(tx, u.sub, [
      {
        id,
        generationId: null,
        batchIndex: null,
        width: 64,
        height: 64,
        metadata: fixtureMetadata(prompt),
        size: 10,
        sha256: 'a'.repeat(64),
        thumbMime: 'image/png',
      },
    ]),
  );
  return id;
}

const usedOf = async (userId: string) =>
  (
    await t.adminPool.query<{ used: number }>(
      'SELECT COALESCE(sum(used), 0)::int AS used FROM usage_periods WHERE user_id = $1',
      [userId],
    )
  ).rows[0]!.used;

beforeAll(async () => {
  s3 = await startTestS3('api-keys-test');
  db = await createTestDatabase({ S3_ENDPOINT: s3.endpoint, S3_BUCKET: s3.bucket, LOG_LEVEL: 'trace' });
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  t = await buildTestApp({
    db,
    overrides: { objectStore: s3.store(), logger: createLogger({ logLevel: 'trace' }, sink) },
  });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  for (const u of [alice, bob]) expect((await call(auth(u), 'GET', '/v1/me')).statusCode).toBe(200);
}, 60_000);
afterAll(async () => {
  await t?.close();
  await s3?.close();
});

describe('creating and listing keys', () => {
  it('answers the whole key once; the list and the database hold only its prefix and hash', async () => {
    const created = await createKey(alice, ['gallery:read', 'account:read'], 'backup script');
    expect(created.key).toMatch(/^atl_[0-9A-Za-z]{49}$/);
    expect(created.id).toMatch(/^key_/);
    expect(created.prefix).toBe(created.key.slice(0, 12));
    const list = (await call(auth(alice), 'GET', '/v1/api-keys')).json();
    const listed = list.items.find((k: { id: string }) => k.id === created.id);
    expect(listed).toEqual({
      id: created.id,
      name: 'backup script',
      prefix: created.prefix,
      scopes: ['gallery:read', 'account:read'],
      createdAt: expect.any(String),
      lastUsedAt: null,
    });
    expect(JSON.stringify(list)).not.toContain(created.key);
    const row = await t.adminPool.query('SELECT * FROM api_keys WHERE id = $1', [created.id]);
    expect(JSON.stringify(row.rows[0])).not.toContain(created.key.slice(12));
    expect(row.rows[0].hash).toEqual((await import('node:crypto')).createHash('sha256').update(created.key).digest());
  });

  it('refuses bad input with VALIDATION_FAILED and writes nothing', async () => {
    const before = (await t.adminPool.query('SELECT count(*)::int AS n FROM api_keys')).rows[0].n;
    for (const body of [
      { name: '', scopes: ['generate'] },
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['admin'] },
      { name: 'x', scopes: ['generate', 'generate'] },
      { name: 'x'.repeat(101), scopes: ['generate'] },
      { name: 'x', scopes: ['generate'], userId: bob.sub },
      { name: 'nul\u0000', scopes: ['generate'] },
    ]) {
      const res = await call(auth(alice), 'POST', '/v1/api-keys', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
    }
    expect((await t.adminPool.query('SELECT count(*)::int AS n FROM api_keys')).rows[0].n).toBe(before);
  });

  it('caps live keys per account with API_KEYS_LIMIT_REACHED; revoking one frees a slot', async () => {
    const u = await createTestUser();
    await call(auth(u), 'GET', '/v1/me');
    const made = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call(auth(u), 'POST', '/v1/api-keys', { name: `k${i}`, scopes: ['generate'] }),
      ),
    );
    expect(made.filter((r) => r.statusCode === 201)).toHaveLength(25);
    const refused = made.filter((r) => r.statusCode === 409);
    expect(refused).toHaveLength(5);
    expect(refused[0]!.json().error.code).toBe('API_KEYS_LIMIT_REACHED');
    const first = made.find((r) => r.statusCode === 201)!.json();
    expect((await call(auth(u), 'DELETE', `/v1/api-keys/${first.id}`)).statusCode).toBe(204);
    expect((await call(auth(u), 'POST', '/v1/api-keys', { name: 'again', scopes: ['generate'] })).statusCode).toBe(201);
  });
});

describe('using a key', () => {
  it('authenticates as its owner on the routes its scopes allow, with the same answers as a session', async () => {
    const k = await createKey(alice, ['account:read', 'gallery:read']);
    const viaKey = await call(bearer(k.key), 'GET', '/v1/me');
    expect(viaKey.statusCode).toBe(200);
    expect(viaKey.json()).toEqual((await call(auth(alice), 'GET', '/v1/me')).json());
    expect((await call(bearer(k.key), 'GET', '/v1/images')).statusCode).toBe(200);
    expect((await call(bearer(k.key), 'GET', '/v1/boards')).statusCode).toBe(200);
    expect((await call(bearer(k.key), 'GET', '/v1/sync/changes')).statusCode).toBe(200);
  });

  it('a gallery:read key cannot generate: 403 API_KEY_SCOPE_MISSING, nothing reserved', async () => {
    const k = await createKey(alice, ['gallery:read']);
    const before = await usedOf(alice.sub);
    const res = await call(bearer(k.key), 'POST', '/v1/generations', { prompt: 'a lighthouse' });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({
      code: 'API_KEY_SCOPE_MISSING',
      details: { requiredScope: 'generate', keyScopes: ['gallery:read'] },
    });
    expect(await usedOf(alice.sub)).toBe(before);
    const gens = await t.adminPool.query('SELECT count(*)::int AS n FROM generations WHERE user_id = $1', [alice.sub]);
    expect(gens.rows[0].n).toBe(0);
    // And it cannot write the gallery either.
    const board = await call(bearer(k.key), 'POST', '/v1/boards', { name: 'b' });
    expect(board.json().error.code).toBe('API_KEY_SCOPE_MISSING');
  });

  it("a generate key generates on its owner's plan and quota, and reads the generation back", async () => {
    const k = await createKey(alice, ['generate']);
    const before = await usedOf(alice.sub);
    const res = await call(bearer(k.key), 'POST', '/v1/generations', { prompt: 'a red fox', count: 2 });
    expect(res.statusCode).toBe(202);
    expect(await usedOf(alice.sub)).toBe(before + 2);
    const g = res.json();
    const back = await call(bearer(k.key), 'GET', `/v1/generations/${g.id}`);
    expect(back.json()).toMatchObject({ id: g.id, status: 'queued' });
    expect((await call(bearer(k.key), 'POST', `/v1/generations/${g.id}/cancel`)).statusCode).toBe(200);
    // Refunded on cancel exactly as for a session.
    expect(await usedOf(alice.sub)).toBe(before);
  });

  it('automation reaches image to image and usage: a generate key reserves inputs, an account:read key reads usage', async () => {
    const body = {
      purpose: 'init',
      contentType: 'image/png',
      byteLength: 1000,
      sha256: 'b'.repeat(64),
      width: 64,
      height: 64,
    };
    const gen = await createKey(alice, ['generate']);
    const created = await call(bearer(gen.key), 'POST', '/v1/inputs', body);
    expect(created.statusCode).toBe(201);
    const id = (created.json() as { inputId: string }).inputId;
    expect((await call(bearer(gen.key), 'GET', `/v1/inputs/${id}`)).statusCode).toBe(200);
    // Bob's key with every scope still cannot see Alice's input.
    const bobs = await createKey(bob, [...API_KEY_SCOPES]);
    expect((await call(bearer(bobs.key), 'GET', `/v1/inputs/${id}`)).statusCode).toBe(404);
    // A read-only key cannot reserve inputs, and the usage chart needs account:read.
    const reader = await createKey(alice, ['gallery:read']);
    const refused = await call(bearer(reader.key), 'POST', '/v1/inputs', { ...body, sha256: 'c'.repeat(64) });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('API_KEY_SCOPE_MISSING');
    expect((await call(bearer(reader.key), 'GET', '/v1/usage/daily')).json().error.code).toBe('API_KEY_SCOPE_MISSING');
    const account = await createKey(alice, ['account:read']);
    expect((await call(bearer(account.key), 'GET', '/v1/usage/daily')).statusCode).toBe(200);
  });

  it('a key cannot manage keys, billing or the account: 403 API_KEY_NOT_ALLOWED', async () => {
    const k = await createKey(alice, [...API_KEY_SCOPES]);
    const other = await createKey(alice, ['generate']);
    for (const [method, url, body] of [
      ['POST', '/v1/api-keys', { name: 'minted by a key', scopes: ['generate'] }],
      ['GET', '/v1/api-keys', undefined],
      ['DELETE', `/v1/api-keys/${other.id}`, undefined],
      ['DELETE', '/v1/me', { password: 'x' }],
      ['GET', '/v1/me/export', undefined],
      ['GET', '/v1/billing/subscription', undefined],
      ['POST', '/v1/billing/checkout', { plan: 'pro' }],
    ] as [Method, string, unknown][]) {
      const res = await call(bearer(k.key), method, url, body);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json().error.code).toBe('API_KEY_NOT_ALLOWED');
    }
    // The other key still works: the DELETE did nothing.
    expect((await call(bearer(other.key), 'GET', '/v1/generations')).statusCode).toBe(200);
    const count = await t.adminPool.query(`SELECT count(*)::int AS n FROM api_keys WHERE name = 'minted by a key'`);
    expect(count.rows[0].n).toBe(0);
  });

  it('updates last used (throttled) and shows it in the list', async () => {
    const k = await createKey(alice, ['account:read']);
    await call(bearer(k.key), 'GET', '/v1/me');
    let listed: { lastUsedAt: string | null } | undefined;
    for (let i = 0; i < 50 && !listed?.lastUsedAt; i++) {
      await new Promise((r) => setTimeout(r, 100));
      listed = (await call(auth(alice), 'GET', '/v1/api-keys')).json().items.find((x: { id: string }) => x.id === k.id);
    }
    expect(listed?.lastUsedAt).toEqual(expect.any(String));
    const first = listed!.lastUsedAt;
    await call(bearer(k.key), 'GET', '/v1/me');
    await new Promise((r) => setTimeout(r, 300));
    const again = (await call(auth(alice), 'GET', '/v1/api-keys'))
      .json()
      .items.find((x: { id: string }) => x.id === k.id);
    // Within the throttle window the second use writes nothing.
    expect(again.lastUsedAt).toBe(first);
  });
});

describe('refused keys', () => {
  it('forged, unknown, wrong-prefix, truncated and malformed keys are 401', async () => {
    const real = await createKey(alice, ['account:read']);
    const unknown = newApiKey().key; // well formed, checksum right, never stored
    const flipped = real.key.slice(0, 20) + (real.key[20] === 'a' ? 'b' : 'a') + real.key.slice(21);
    const cases: [string, string][] = [
      [unknown, 'API_KEY_INVALID'],
      [flipped, 'API_KEY_INVALID'],
      [real.key.slice(0, -1), 'API_KEY_INVALID'],
      [`${real.key}x`, 'API_KEY_INVALID'],
      [real.key.replace('atl_', 'atk_'), 'AUTH_INVALID_TOKEN'],
      [real.key.replace('atl_', 'ATL_'), 'AUTH_INVALID_TOKEN'],
      ['atl_', 'API_KEY_INVALID'],
      [`atl_${'0'.repeat(49)}`, 'API_KEY_INVALID'],
      [`atl_${'é'.repeat(49)}`, 'API_KEY_INVALID'],
    ];
    for (const [key, code] of cases) {
      const res = await call(bearer(key), 'GET', '/v1/me');
      expect(res.statusCode, key).toBe(401);
      expect(res.json().error.code, key).toBe(code);
    }
    expect((await call({ authorization: real.key }, 'GET', '/v1/me')).json().error.code).toBe('AUTH_INVALID_TOKEN');
    expect((await call(bearer(real.key), 'GET', '/v1/me')).statusCode).toBe(200);
  });

  it('a revoked key is refused on the next request (API_KEY_REVOKED) and leaves the list', async () => {
    const k = await createKey(alice, ['account:read']);
    expect((await call(bearer(k.key), 'GET', '/v1/me')).statusCode).toBe(200); // now cached
    expect((await call(auth(alice), 'DELETE', `/v1/api-keys/${k.id}`)).statusCode).toBe(204);
    const res = await call(bearer(k.key), 'GET', '/v1/me');
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('API_KEY_REVOKED');
    const list = (await call(auth(alice), 'GET', '/v1/api-keys')).json();
    expect(list.items.map((x: { id: string }) => x.id)).not.toContain(k.id);
    const again = await call(auth(alice), 'DELETE', `/v1/api-keys/${k.id}`);
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('NOT_FOUND');
    expect((await call(auth(alice), 'DELETE', '/v1/api-keys/nope')).json().error.code).toBe('VALIDATION_FAILED');
  });

  it('an account being deleted: its keys stop at once (410 ACCOUNT_DELETED) and it cannot mint more', async () => {
    const u = await createTestUser();
    await call(auth(u), 'GET', '/v1/me');
    const k = await createKey(u, ['account:read']);
    expect((await call(bearer(k.key), 'GET', '/v1/me')).statusCode).toBe(200);
    await t.adminPool.query('UPDATE users SET deleting_at = now() WHERE id = $1', [u.sub]);
    // The cached entry is served only within its ttl; the authoritative check is the lookup.
    t.app.apiKeys.invalidate(k.id);
    const res = await call(bearer(k.key), 'GET', '/v1/me');
    expect(res.statusCode).toBe(410);
    expect(res.json().error.code).toBe('ACCOUNT_DELETED');
    const mint = await call(auth(u), 'POST', '/v1/api-keys', { name: 'late', scopes: ['generate'] });
    expect(mint.statusCode).toBe(410);
  });
});

describe("another user's key", () => {
  let aliceImage: ImageId;
  let aliceGen: string;
  let aliceBoard: string;
  let aliceKey: { id: string; key: string };
  let bobKey: { id: string; key: string };

  beforeAll(async () => {
    aliceImage = await seedImage(alice, 'a private picture');
    const g = await call(auth(alice), 'POST', '/v1/generations', { prompt: 'a private prompt' });
    aliceGen = g.json().id;
    aliceBoard = (await call(auth(alice), 'POST', '/v1/boards', { name: 'private board' })).json().id;
    aliceKey = await createKey(alice, ['gallery:read']);
    bobKey = await createKey(bob, [...API_KEY_SCOPES]);
  });

  it("never reads, changes or learns of this user's images, boards, generations or usage", async () => {
    const b = bearer(bobKey.key);
    for (const [method, url, body] of [
      ['GET', `/v1/images/${aliceImage}`, undefined],
      ['PATCH', `/v1/images/${aliceImage}`, { starred: true }],
      ['DELETE', `/v1/images/${aliceImage}`, undefined],
      ['GET', `/v1/generations/${aliceGen}`, undefined],
      ['POST', `/v1/generations/${aliceGen}/cancel`, undefined],
      ['PATCH', `/v1/boards/${aliceBoard}`, { name: 'taken' }],
      ['DELETE', `/v1/boards/${aliceBoard}`, undefined],
    ] as [Method, string, unknown][]) {
      const res = await call(b, method, url, body);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
    }
    const lists = await Promise.all(
      ['/v1/images', '/v1/boards', '/v1/generations', '/v1/sync/changes', '/v1/me'].map((u) => call(b, 'GET', u)),
    );
    const text = lists.map((r) => r.body).join('\n');
    for (const secret of [aliceImage, aliceGen, aliceBoard, alice.sub, 'a private', 'private board'])
      expect(text).not.toContain(secret);
    expect(lists[4]!.json().id).toBe(bob.sub);
    // Alice's things are untouched.
    const img = await call(auth(alice), 'GET', `/v1/images/${aliceImage}`);
    expect(img.json()).toMatchObject({ id: aliceImage, starred: false });
    expect((await call(auth(alice), 'GET', `/v1/generations/${aliceGen}`)).json().status).toBe('queued');
  });

  it("cannot list or revoke this user's keys with a session either", async () => {
    const bobList = (await call(auth(bob), 'GET', '/v1/api-keys')).json();
    expect(JSON.stringify(bobList)).not.toContain(aliceKey.id);
    const res = await call(auth(bob), 'DELETE', `/v1/api-keys/${aliceKey.id}`);
    expect(res.statusCode).toBe(404);
    expect((await call(bearer(aliceKey.key), 'GET', '/v1/images')).statusCode).toBe(200);
  });

  it('RLS: the app role sees no key row without its user set, and only its own with it', async () => {
    const none = await t.pool.query('SELECT count(*)::int AS n FROM api_keys');
    expect(none.rows[0].n).toBe(0);
    const c = await t.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT set_config('app.user_id', $1, true)`, [bob.sub]);
      const rows = await c.query('SELECT user_id FROM api_keys');
      expect(rows.rows.every((r) => r.user_id === bob.sub)).toBe(true);
      // Bob cannot revoke Alice's key by SQL through RLS either.
      const upd = await c.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [aliceKey.id]);
      expect(upd.rowCount).toBe(0);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
  });
});

describe('limits and logs', () => {
  it('no key reaches a log line: a key-authenticated request, an invalid key, a revoked key', async () => {
    const k = await createKey(alice, ['account:read']);
    const bad = newApiKey().key;
    logLines.length = 0;
    await call(bearer(k.key), 'GET', '/v1/me');
    await call(bearer(bad), 'GET', '/v1/me');
    await call(bearer(`${k.key.slice(0, -3)}zzz`), 'GET', '/v1/me');
    const created = await call(auth(alice), 'POST', '/v1/api-keys', { name: 'logged?', scopes: ['generate'] });
    const fresh = created.json().key as string;
    const all = logLines.join('');
    expect(logLines.length).toBeGreaterThan(4); // trace level logs every request
    for (const secret of [k.key, bad, fresh, k.key.slice(4), fresh.slice(4)]) expect(all).not.toContain(secret);
    // The key's id is there, so an operator can still tell which key made a request.
    expect(all).toContain(k.id);
  });

  it("each key has its own per-minute limit on top of its user's (which counts keys and sessions together)", async () => {
    const db2 = await createTestDatabase({ RATE_LIMIT_KEY_PER_MINUTE: '3', RATE_LIMIT_USER_PER_MINUTE: '10' });
    const t2 = await buildTestApp({ db: db2 });
    try {
      const u = await createTestUser();
      const c = (h: Record<string, string>) => t2.app.inject({ url: '/v1/me', headers: h });
      const limitOf = async (h: Record<string, string>) => {
        const res = await c(h);
        return res.statusCode === 429 ? (res.json().error.details.limit as string) : res.statusCode;
      };
      expect(await limitOf(auth(u))).toBe(200); // user: 1
      const mk = async () =>
        (
          await t2.app.inject({
            method: 'POST',
            url: '/v1/api-keys',
            headers: auth(u),
            payload: { name: 'k', scopes: ['account:read'] },
          })
        ).json().key as string;
      const k1 = await mk();
      const k2 = await mk(); // user: 3
      const first: unknown[] = [];
      for (let i = 0; i < 5; i++) first.push(await limitOf(bearer(k1)));
      // Key 1's own limit (3) refuses its 4th and 5th; the user is at 8.
      expect(first).toEqual([200, 200, 200, 'api_key', 'api_key']);
      // Another key of the same user is not held back by key 1's limit…
      expect(await limitOf(bearer(k2))).toBe(200); // user: 9
      expect(await limitOf(bearer(k2))).toBe(200); // user: 10
      // …but the user's limit counts every key and session together.
      expect(await limitOf(bearer(k2))).toBe('user');
      expect(await limitOf(auth(u))).toBe('user');
    } finally {
      await t2.close();
    }
  });
});

describe('OpenAPI', () => {
  it('documents the keys routes, the key bearer scheme, and the scope each route needs', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json();
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const s of API_KEY_SCOPES) expect(doc.components.securitySchemes.apiKey.description).toContain(s);
    expect(Object.keys(doc.paths['/v1/api-keys'])).toEqual(expect.arrayContaining(['get', 'post']));
    expect(doc.paths['/v1/api-keys/{id}'].delete).toBeDefined();
    expect(doc.paths['/v1/api-keys'].post.security).toEqual([{ bearer: [] }]);
    const gen = doc.paths['/v1/generations'].post;
    expect(gen['x-api-key-scope']).toBe('generate');
    expect(gen.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(gen.responses['403']).toBeDefined();
    expect(doc.paths['/v1/me'].get['x-api-key-scope']).toBe('account:read');
    expect(doc.paths['/v1/images/{id}'].delete['x-api-key-scope']).toBe('gallery:write');
  });
});
