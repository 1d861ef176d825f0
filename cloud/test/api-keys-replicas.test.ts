/**
 * API keys across replicas (issue 16): TWO real API processes on one database and one Redis.
 * Each caches live keys; a revocation through one is refused on the very next request through
 * the other (LISTEN/NOTIFY plus the round trip on the listening connection, decision 0161), and
 * the per-key rate limit is one budget across both.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiProcessEnv, startApiProcess, type ApiProcess } from './support/api-process.ts';
import { auth, createTestDatabase, createTestUser, type TestDatabase, type TestUser } from './support/index.ts';

const REDIS_URL = process.env.ATELIER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_LIMIT = 5;
const prefix = `atelier-test-keys:${randomBytes(6).toString('hex')}:`;
let a: ApiProcess;
let b: ApiProcess;
let alice: TestUser;
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  const env = apiProcessEnv(db, {
    PATH: process.env.PATH ?? '',
    REDIS_URL,
    RATE_LIMIT_REDIS_PREFIX: prefix,
    RATE_LIMIT_KEY_PER_MINUTE: String(KEY_LIMIT),
  });
  alice = await createTestUser();
  [a, b] = await Promise.all([startApiProcess(env), startApiProcess(env)]);
}, 120_000);

afterAll(async () => {
  await Promise.all([a, b].filter(Boolean).map((r) => r.stop()));
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const send = async (r: ApiProcess, method: string, url: string, headers: Record<string, string>, body?: unknown) => {
  const res = await fetch(`${r.url}${url}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: (text ? JSON.parse(text) : {}) as { error?: { code: string; details?: unknown } } & Record<string, unknown>,
  };
};
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function createKey(r: ApiProcess, scopes: string[]) {
  const res = await send(r, 'POST', '/v1/api-keys', auth(alice), { name: 'replica test', scopes });
  expect(res.status).toBe(201);
  return res.body as { id: string; key: string };
}

describe('API keys on two API processes', () => {
  it('a key revoked through one process is refused on the next request through the other, every time', async () => {
    expect((await send(a, 'GET', '/v1/me', auth(alice))).status).toBe(200);
    for (let round = 0; round < 10; round++) {
      // Alternate which process revokes and which one has the key cached.
      const [revoker, user] = round % 2 === 0 ? [a, b] : [b, a];
      const k = await createKey(revoker, ['account:read']);
      for (let i = 0; i < 3; i++) expect((await send(user, 'GET', '/v1/me', bearer(k.key))).status).toBe(200);
      expect((await send(revoker, 'DELETE', `/v1/api-keys/${k.id}`, auth(alice))).status).toBe(204);
      const next = await send(user, 'GET', '/v1/me', bearer(k.key));
      expect(next.status, `round ${round}`).toBe(401);
      expect(next.body.error?.code).toBe('API_KEY_REVOKED');
      expect((await send(revoker, 'GET', '/v1/me', bearer(k.key))).status).toBe(401);
    }
  });

  it('a revoked key cannot start work through the other process: 401 before anything is reserved', async () => {
    for (let round = 0; round < 4; round++) {
      const [revoker, user] = round % 2 === 0 ? [a, b] : [b, a];
      const k = await createKey(revoker, ['generate']);
      expect((await send(user, 'GET', '/v1/generations', bearer(k.key))).status).toBe(200); // cached
      expect((await send(revoker, 'DELETE', `/v1/api-keys/${k.id}`, auth(alice))).status).toBe(204);
      const res = await send(user, 'POST', '/v1/generations', bearer(k.key), { prompt: 'after revoke' });
      expect(res.status, `round ${round}`).toBe(401);
      expect(res.body.error?.code).toBe('API_KEY_REVOKED');
    }
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const gens = await c.query(`SELECT count(*)::int AS n FROM generations WHERE params->>'prompt' = 'after revoke'`);
      expect(gens.rows[0].n).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('a revocation by an operator in SQL reaches both processes too (the trigger notifies)', async () => {
    const k = await createKey(a, ['account:read']);
    for (const r of [a, b]) expect((await send(r, 'GET', '/v1/me', bearer(k.key))).status).toBe(200);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [k.id]);
    } finally {
      await c.end();
    }
    for (const r of [a, b])
      expect((await send(r, 'GET', '/v1/me', bearer(k.key))).body.error?.code).toBe('API_KEY_REVOKED');
  });

  it(`one key's ${KEY_LIMIT} requests per minute are one budget across both processes`, async () => {
    const k = await createKey(a, ['account:read']);
    const statuses: number[] = [];
    for (let i = 0; i < KEY_LIMIT + 1; i++)
      statuses.push((await send(i % 2 ? a : b, 'GET', '/v1/me', bearer(k.key))).status);
    expect(statuses).toEqual([...Array(KEY_LIMIT).fill(200), 429]);
    const refused = await send(a, 'GET', '/v1/me', bearer(k.key));
    expect(refused.body.error).toMatchObject({ code: 'RATE_LIMITED', details: { limit: 'api_key' } });
    // The user's session is not held back by the key's limit.
    expect((await send(b, 'GET', '/v1/me', auth(alice))).status).toBe(200);
  });
});
