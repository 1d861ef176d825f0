/**
 * Issue 11, database faults: a row lock held by someone else, a saturated pool or a database that
 * is down answers 503 SERVICE_UNAVAILABLE (retryable) — never 500, never a hang — and one user
 * cannot hold every pooled connection while another user waits.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { createPool, isDatabaseUnavailable } from '../src/db/pool.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  testConfig,
  type TestApp,
  type TestDatabase,
  type TestUser,
} from './support/index.ts';
import { freePort } from './support/free-port.ts';

let db: TestDatabase;
let t: TestApp;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  db = await createTestDatabase({
    DATABASE_POOL_MAX: '4',
    DATABASE_LOCK_TIMEOUT_MS: '300',
    DATABASE_ACQUIRE_TIMEOUT_MS: '2000',
    USER_IN_FLIGHT_MAX: '2',
  });
  t = await buildTestApp({ db });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  for (const u of [alice, bob]) expect((await t.app.inject({ url: '/v1/me', headers: auth(u) })).statusCode).toBe(200);
});
afterAll(() => t.close());

describe('a row lock held elsewhere', () => {
  it("stalls neither the API nor another user: the locked user's requests get 503 or 429, bob gets 200", async () => {
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [alice.sub]);
      const aliceRequests = Array.from({ length: 10 }, (_, i) =>
        t.app.inject({
          method: 'POST',
          url: '/v1/generations',
          headers: auth(alice),
          payload: { prompt: `blocked ${i}` },
        }),
      );
      // While the lock is still held:
      const bobs = await t.app.inject({ url: '/v1/me', headers: auth(bob) });
      expect(bobs.statusCode).toBe(200);
      const rs = await Promise.all(aliceRequests);
      const codes = rs.map((r) => `${r.statusCode} ${r.json().error?.code}`);
      for (const c of codes) expect(['503 SERVICE_UNAVAILABLE', '429 RATE_LIMITED']).toContain(c);
      expect(codes).toContain('503 SERVICE_UNAVAILABLE');
      expect(codes).toContain('429 RATE_LIMITED');
      const unavailable = rs.find((r) => r.statusCode === 503)!;
      expect(Number(unavailable.headers['retry-after'])).toBeGreaterThan(0);
      const limited = rs.find((r) => r.statusCode === 429)!;
      expect(limited.json().error.details).toMatchObject({ limit: 'user_in_flight' });
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    // Nothing was charged or written by the refused requests.
    const n = await t.adminPool.query('SELECT count(*)::int AS n FROM generations WHERE user_id = $1', [alice.sub]);
    expect(n.rows[0]).toEqual({ n: 0 });
    // And alice is served again once the lock is gone.
    const after = await t.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: auth(alice),
      payload: { prompt: 'after' },
    });
    expect(after.statusCode).toBe(202);
  });
});

describe('a database that is down', () => {
  it('answers 503 SERVICE_UNAVAILABLE with Retry-After, not 500', async () => {
    const deadPort = await freePort();
    const config = testConfig(db.url, {
      DATABASE_APP_URL: `postgres://atelier_app:x@127.0.0.1:${deadPort}/none`,
      DATABASE_ACQUIRE_TIMEOUT_MS: '1000',
    });
    const pool = createPool(config, 'app');
    const app = await buildApp({ config, pool, queue: t.queue, events: t.events, logger: false });
    try {
      const res = await app.inject({ url: '/v1/me', headers: auth(bob) });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('SERVICE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBe('2');
    } finally {
      await app.close();
      await pool.end();
    }
  });

  it('classifies timeouts, refused connections and shutdowns as unavailable, and bad SQL as not', () => {
    for (const code of ['57014', '55P03', '53300', '57P01', '08006', 'ECONNREFUSED'])
      expect(isDatabaseUnavailable(Object.assign(new Error('x'), { code }))).toBe(true);
    expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('syntax'), { code: '42601' }))).toBe(false);
    expect(isDatabaseUnavailable(Object.assign(new Error('dup'), { code: '23505' }))).toBe(false);
  });
});
