/**
 * Issue 11, the edges of authentication: the gate decides on the matched route (every /v1 route,
 * however its URL is written), limits run before the work they protect, 401s are counted, and the
 * client IP is the one the load balancer saw.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LIMITS_ENV, toLimitsConfig } from '../src/api/limits.ts';
import type { TokenVerifier } from '../src/auth/verifier.ts';
import { createTokenVerifier } from '../src/auth/verifier.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  forgeToken,
  strangerKey,
  type TestApp,
  type TestDatabase,
  type TestUser,
} from './support/index.ts';

let db: TestDatabase;
let t: TestApp;
let alice: TestUser;

beforeAll(async () => {
  db = await createTestDatabase();
  t = await buildTestApp({ db });
  alice = await createTestUser();
});
afterAll(() => t.close());

/** A real value for every route parameter, so the request reaches the route. */
const fill = (url: string) =>
  url
    .replace(':id', 'gen_01ARZ3NDEKTSV4RRFFQ69G5FAV')
    .replace(/:(\w+)/g, 'x')
    .replace('*', 'x');

/** Sends one raw HTTP/1.1 request (so the request target can be absolute-form) and returns the status and body. */
function rawRequest(port: number, method: string, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (data += c));
    s.on('error', reject);
    s.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    const body = method === 'GET' || method === 'DELETE' ? '' : '{}';
    s.write(
      `${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` +
        (body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : '') +
        `\r\n${body}`,
    );
  });
}

describe('the auth gate decides on the matched route', () => {
  it('lists exactly these public /v1 routes (a new public route is a deliberate change here)', () => {
    const publicV1 = t.app
      .registeredRoutes()
      .filter((r) => r.public && r.url.startsWith('/v1'))
      .map((r) => `${r.method} ${r.url}`)
      .sort();
    expect(publicV1).toEqual([
      'GET /v1/billing/return',
      'GET /v1/billing/upgrade',
      'GET /v1/events',
      'GET /v1/models',
      'GET /v1/plans',
      'POST /v1/webhooks/stripe',
    ]);
  });

  it('every other registered /v1 route answers 401 without a token, whether the path is plain, percent-encoded or absolute-form', async () => {
    const guarded = t.app.registeredRoutes().filter((r) => !r.public && r.url.startsWith('/v1/'));
    expect(guarded.length).toBeGreaterThanOrEqual(12);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (t.app.server.address() as net.AddressInfo).port;
    const seen: string[] = [];
    for (const r of guarded) {
      const path = fill(r.url);
      const variants = [path, path.replace('/v1/', '/%76%31/'), `http://x${path}`];
      for (const target of variants) {
        const res = await rawRequest(port, r.method, target);
        seen.push(`${r.method} ${target} → ${res.status}`);
        expect({ route: `${r.method} ${target}`, status: res.status }).toEqual({
          route: `${r.method} ${target}`,
          status: 401,
        });
        expect(JSON.parse(res.body).error.code).toBe('AUTH_REQUIRED');
      }
    }
    expect(seen.length).toBe(guarded.length * 3);
  });

  it('a percent-encoded path with a valid token still reaches the handler as that user', async () => {
    const res = await t.app.inject({ url: '/%76%31/me', headers: auth(alice) });
    expect(res.statusCode).toBe(200);
    expect(res.json().id).toBe(alice.sub);
  });
});

describe('limits run before authentication, and failed authentications are counted', () => {
  let lt: TestApp;
  let verifies = 0;
  beforeAll(async () => {
    const ldb = await createTestDatabase({ RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '3' });
    const real = createTokenVerifier({
      issuer: ldb.config.cognito.issuer,
      clientId: ldb.config.cognito.clientId,
      jwksUrl: ldb.config.cognito.jwksUrl,
    });
    const counting: TokenVerifier = {
      ...real,
      verify: (token: string) => {
        verifies++;
        return real.verify(token);
      },
    };
    lt = await buildTestApp({ db: ldb, overrides: { verifier: counting } });
  });
  afterAll(() => lt.close());

  it('after 3 forged tokens from one address, the 4th gets 429 without an RSA verify, and the 401s are in /metrics', async () => {
    const forged = { authorization: `Bearer ${await forgeToken(await strangerKey())}` };
    for (let i = 0; i < 3; i++) {
      const res = await lt.app.inject({ url: '/v1/me', headers: forged, remoteAddress: '198.51.100.7' });
      expect(res.statusCode).toBe(401);
    }
    const before = verifies;
    const blocked = await lt.app.inject({ url: '/v1/me', headers: forged, remoteAddress: '198.51.100.7' });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().error).toMatchObject({ code: 'RATE_LIMITED', details: { limit: 'auth_failures' } });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(verifies).toBe(before);
    // Another address is unaffected.
    expect(
      (await lt.app.inject({ url: '/v1/me', headers: auth(alice), remoteAddress: '198.51.100.8' })).statusCode,
    ).toBe(200);
    const metrics = await lt.app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/^atelier_auth_failures_total 3$/m);
    expect(metrics.body).toMatch(/^atelier_limit_rejections_total\{limit="auth_failures"\} 1$/m);
  });

  it('the per-IP limit refuses forged tokens before they are verified', async () => {
    const idb = await createTestDatabase({ RATE_LIMIT_IP_PER_MINUTE: '2', RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '100' });
    let n = 0;
    const v: TokenVerifier = {
      verify: async () => {
        n++;
        throw new (await import('@atelier/common')).AppError('AUTH_INVALID_TOKEN', 'forged');
      },
    } as unknown as TokenVerifier;
    const it2 = await buildTestApp({ db: idb, overrides: { verifier: v } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++)
        codes.push(
          (
            await it2.app.inject({
              url: '/v1/me',
              headers: { authorization: 'Bearer x.y.z' },
              remoteAddress: '192.0.2.1',
            })
          ).statusCode,
        );
      expect(codes).toEqual([401, 401, 429, 429, 429]);
      expect(n).toBe(2);
    } finally {
      await it2.close();
    }
  });
});

describe('client IP: exactly the load balancer hop is trusted', () => {
  it('production trusts one hop by default; development trusts none', () => {
    const base = z.object(LIMITS_ENV).parse({});
    expect(toLimitsConfig(base, { production: true }).trustProxyHops).toBe(1);
    expect(toLimitsConfig(base, { production: false }).trustProxyHops).toBe(0);
    expect(toLimitsConfig({ ...base, TRUST_PROXY_HOPS: 2 }, { production: true }).trustProxyHops).toBe(2);
  });

  it('a client rotating the left-most X-Forwarded-For cannot escape its per-IP limit', async () => {
    const pdb = await createTestDatabase({ RATE_LIMIT_IP_PER_MINUTE: '3', TRUST_PROXY_HOPS: '1' });
    const p = await buildTestApp({ db: pdb });
    try {
      const from = (spoofed: string, seenByLb: string) =>
        p.app.inject({ url: '/v1/plans', headers: { 'x-forwarded-for': `${spoofed}, ${seenByLb}` } });
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) codes.push((await from(`10.0.0.${i}`, '203.0.113.9')).statusCode);
      expect(codes).toEqual([200, 200, 200, 429, 429]);
      // A different client behind the same load balancer has its own budget.
      expect((await from('10.0.0.1', '203.0.113.10')).statusCode).toBe(200);
    } finally {
      await p.close();
    }
  });
});

describe('operator surfaces are private behind the load balancer', () => {
  let o: TestApp;
  beforeAll(async () => {
    o = await buildTestApp({ db: await createTestDatabase({ TRUST_PROXY_HOPS: '1' }) });
  });
  afterAll(() => o.close());
  const viaLb = { 'x-forwarded-for': '203.0.113.20' };

  for (const url of ['/metrics', '/docs', '/docs/', '/docs/json', '/openapi.json'])
    it(`${url}: 404 through the load balancer, served inside the VPC`, async () => {
      const outside = await o.app.inject({ url, headers: viaLb });
      expect(outside.statusCode).toBe(404);
      expect(outside.json().error.code).toBe('NOT_FOUND');
      expect(outside.body).not.toMatch(/atelier_|swagger|openapi/i);
      expect(outside.headers['x-content-type-options']).toBe('nosniff');
      const inside = await o.app.inject({ url });
      expect(inside.statusCode).toBeLessThan(400);
    });

  it('/readyz names pending migrations only inside the VPC', async () => {
    await o.adminPool.query(
      `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`,
    );
    const outside = await o.app.inject({ url: '/readyz', headers: viaLb });
    expect(outside.statusCode).toBe(503);
    expect(outside.json().error).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'Migrations pending' });
    const inside = await o.app.inject({ url: '/readyz' });
    expect(inside.json().error.details.pending).toHaveLength(1);
  });
});

describe('the per-user limit applies to every guarded route by construction', () => {
  it('one budget across routes, refused right after the token is verified', async () => {
    const u = await buildTestApp({ db: await createTestDatabase({ RATE_LIMIT_USER_PER_MINUTE: '3' }) });
    try {
      const codes: number[] = [];
      for (const url of ['/v1/me', '/v1/boards', '/v1/images', '/v1/generations', '/v1/me'])
        codes.push((await u.app.inject({ url, headers: auth(alice) })).statusCode);
      expect(codes).toEqual([200, 200, 200, 429, 429]);
      const res = await u.app.inject({ url: '/v1/billing/subscription', headers: auth(alice) });
      expect(res.statusCode).toBe(429);
      expect(res.json().error.code).toBe('RATE_LIMITED');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await u.close();
    }
  });
});
