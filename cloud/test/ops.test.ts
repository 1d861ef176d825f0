import fastifyHelmet from '@fastify/helmet';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELMET_OPTIONS } from '../src/api/security-headers.ts';
import { migrate } from '../src/db/migrate.ts';
import { parseConfig } from '../src/config.ts';
import { withSystemTx } from '../src/db/tx.ts';
import { setUsage } from '../src/quota/usage.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  testConfig,
  type TestApp,
  type TestUser,
} from './support/index.ts';

let t: TestApp;
let user: TestUser;

beforeAll(async () => {
  const db = await createTestDatabase({
    RATE_LIMIT_USER_PER_MINUTE: '5',
    RATE_LIMIT_IP_PER_MINUTE: '1000',
    BODY_LIMIT_BYTES: '4096',
  });
  t = await buildTestApp({ db });
  user = await createTestUser();
});
afterAll(() => t.close());

describe('operations and protection', () => {
  it('/healthz, /readyz (database reachable and migrations current), /metrics without user ids', async () => {
    expect((await t.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await t.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
    await t.app.inject({ url: '/v1/me', headers: auth(user) });
    const metrics = await t.app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    expect(metrics.body).toContain('atelier_http_requests_total{method="GET",route="/v1/me",status="200"}');
    expect(metrics.body).not.toContain(user.sub);
  });

  it('/readyz is 503 while migrations are pending', async () => {
    const db = await createTestDatabase();
    await t.adminPool.query(`SELECT 1`);
    const other = await buildTestApp({ db });
    try {
      await other.adminPool.query(
        `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`,
      );
      const res = await other.app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      await other.close();
    }
  });

  it('serves OpenAPI with the generation routes, and the docs page', async () => {
    const spec = (await t.app.inject({ url: '/openapi.json' })).json();
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining([
        '/v1/me',
        '/v1/plans',
        '/v1/generations',
        '/v1/generations/{id}',
        '/v1/generations/{id}/cancel',
      ]),
    );
    expect(spec.paths['/v1/generations'].post.requestBody).toBeDefined();
    const docs = await t.app.inject({ url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
  });

  it('sets security headers, keeps CORS closed and echoes a request id', async () => {
    const res = await t.app.inject({
      url: '/v1/plans',
      headers: { origin: 'https://evil.example', 'x-request-id': 'req-123' },
    });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toBeDefined();
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['x-request-id']).toBe('req-123');
  });

  it("security headers are @fastify/helmet's, on successes, 401s and 404s alike", async () => {
    const ref = Fastify();
    await ref.register(fastifyHelmet, { ...(HELMET_OPTIONS as object) }); // (helmet ships two copies of its option types)
    ref.get('/x', async () => ({}));
    const expected = (await ref.inject({ url: '/x' })).headers;
    await ref.close();
    const names = Object.keys(expected).filter(
      (h) => !['content-type', 'content-length', 'date', 'connection'].includes(h),
    );
    expect(names).toEqual(
      expect.arrayContaining(['strict-transport-security', 'x-frame-options', 'cross-origin-resource-policy']),
    );
    for (const url of ['/v1/plans', '/v1/me', '/v1/nowhere']) {
      const res = await t.app.inject({ url });
      for (const h of names) expect(res.headers[h], `${url} ${h}`).toBe(expected[h]);
      expect(res.headers['content-security-policy']).toBeUndefined();
    }
  });

  it('refuses bodies over the limit with PAYLOAD_TOO_LARGE', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: { ...auth(user), 'content-type': 'application/json' },
      payload: JSON.stringify({ prompt: 'x'.repeat(5000) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('rate-limits per user with 429 RATE_LIMITED and Retry-After', async () => {
    const u = await createTestUser();
    const codes: number[] = [];
    let last;
    for (let i = 0; i < 7; i++) {
      last = await t.app.inject({ url: '/v1/me', headers: auth(u) });
      codes.push(last.statusCode);
    }
    expect(codes.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(last!.statusCode).toBe(429);
    expect(last!.json().error.code).toBe('RATE_LIMITED');
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    // Another user is not affected.
    expect((await t.app.inject({ url: '/v1/me', headers: auth(user) })).statusCode).toBe(200);
  });

  it('rate-limits per IP across users', async () => {
    const db = await createTestDatabase({ RATE_LIMIT_IP_PER_MINUTE: '3' });
    const other = await buildTestApp({ db });
    try {
      const codes = [];
      for (let i = 0; i < 4; i++)
        codes.push((await other.app.inject({ url: '/v1/plans', remoteAddress: '10.1.2.3' })).statusCode);
      expect(codes).toEqual([200, 200, 200, 429]);
      expect((await other.app.inject({ url: '/v1/plans', remoteAddress: '10.9.9.9' })).statusCode).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('month rollover: a new UTC month starts from zero with no job resetting anything', async () => {
    const u = await createTestUser();
    let now = new Date('2031-01-31T23:59:00Z');
    const db = await createTestDatabase();
    const other = await buildTestApp({ db, overrides: { now: () => now } });
    try {
      await other.app.inject({ url: '/v1/me', headers: auth(u) });
      await withSystemTx(other.systemPool, (tx) => setUsage(tx, u.sub, 100, now));
      const full = await other.app.inject({
        method: 'POST',
        url: '/v1/generations',
        headers: auth(u),
        payload: { prompt: 'jan' },
      });
      expect(full.statusCode).toBe(429);
      expect(full.json().error.details.periodEnd).toBe('2031-02-01T00:00:00.000Z');
      now = new Date('2031-02-01T00:00:01Z');
      const me = (await other.app.inject({ url: '/v1/me', headers: auth(u) })).json();
      expect(me.usage).toEqual({
        used: 0,
        limit: 100,
        periodStart: '2031-02-01T00:00:00.000Z',
        periodEnd: '2031-03-01T00:00:00.000Z',
      });
      const ok = await other.app.inject({
        method: 'POST',
        url: '/v1/generations',
        headers: auth(u),
        payload: { prompt: 'feb' },
      });
      expect(ok.statusCode).toBe(202);
      const rows = await other.adminPool.query(
        `SELECT period_start, used FROM usage_periods WHERE user_id = $1 ORDER BY period_start`,
        [u.sub],
      );
      expect(rows.rows.map((r) => [r.period_start.toISOString(), r.used])).toEqual([
        ['2031-01-01T00:00:00.000Z', 100],
        ['2031-02-01T00:00:00.000Z', 1],
      ]);
    } finally {
      await other.close();
    }
  });

  it('migrations are idempotent and re-runnable', async () => {
    const db = await createTestDatabase();
    expect(await migrate(db.config)).toEqual({ applied: [] });
  });
});

describe('config', () => {
  it('works with no variables and names the bad one otherwise', () => {
    const c = parseConfig({});
    expect(c.api.port).toBe(8787);
    expect(c.cognito.issuer).toBe('http://localhost:9229/local_atelier');
    expect(() => parseConfig({ ATELIER_API_PORT: 'eighty' })).toThrow(/ATELIER_API_PORT/);
    expect(() => parseConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL/);
  });

  it('production refuses http issuers and cognito-local pools', () => {
    expect(() => parseConfig({ NODE_ENV: 'production' })).toThrow(
      /COGNITO_ISSUER: production requires an https issuer/,
    );
    expect(() =>
      parseConfig({ ATELIER_ENV: 'production', COGNITO_REGION: 'eu-west-1', COGNITO_USER_POOL_ID: 'local_abc' }),
    ).toThrow(/cognito-local/);
    const ok = parseConfig({
      ATELIER_ENV: 'production',
      COGNITO_REGION: 'eu-west-1',
      COGNITO_USER_POOL_ID: 'eu-west-1_AbC',
    });
    expect(ok.cognito.issuer).toBe('https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC');
    expect(testConfig('postgres://x@127.0.0.1/y').production).toBe(false);
  });
});
