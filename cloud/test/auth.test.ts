import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auth,
  buildTestApp,
  cognitoLocalKey,
  createTestDatabase,
  createTestUser,
  forgeToken,
  stackInfo,
  strangerKey,
  testConfig,
  unsignedToken,
  type TestApp,
  type TestUser,
} from './support/index.ts';

let t: TestApp;
let alice: TestUser;

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  alice = await createTestUser();
});
afterAll(() => t.close());

const me = (headers: Record<string, string>) => t.app.inject({ method: 'GET', url: '/v1/me', headers });

describe('authentication', () => {
  it('accepts a real cognito-local access token and provisions the user with their email', async () => {
    const res = await me(auth(alice));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: alice.sub,
      email: alice.email,
      plan: 'free',
      usage: { used: 0, limit: 100 },
    });
    const rows = await t.adminPool.query('SELECT id, email FROM users WHERE id = $1', [alice.sub]);
    expect(rows.rows).toEqual([{ id: alice.sub, email: alice.email }]);
  });

  const cases: [string, () => Promise<Record<string, string>>, string][] = [
    ['missing', async () => ({}), 'AUTH_REQUIRED'],
    [
      'not bearer',
      async () => ({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }),
      'AUTH_INVALID_TOKEN',
    ],
    ['malformed', async () => ({ authorization: 'Bearer not-a-jwt' }), 'AUTH_INVALID_TOKEN'],
    [
      'badly signed',
      async () => ({ authorization: `Bearer ${await forgeToken(await strangerKey())}` }),
      'AUTH_INVALID_TOKEN',
    ],
    [
      'alg none',
      async () => ({
        authorization: `Bearer ${unsignedToken({ sub: alice.sub, token_use: 'access', client_id: stackInfo().clientId, iss: stackInfo().issuer, exp: Math.floor(Date.now() / 1000) + 600 })}`,
      }),
      'AUTH_INVALID_TOKEN',
    ],
    [
      'expired',
      async () => ({
        authorization: `Bearer ${await forgeToken(await cognitoLocalKey(), { sub: alice.sub, iat: 1000, exp: Math.floor(Date.now() / 1000) - 60 })}`,
      }),
      'AUTH_TOKEN_EXPIRED',
    ],
    [
      'wrong issuer',
      async () => ({
        authorization: `Bearer ${await forgeToken(await cognitoLocalKey(), { iss: 'http://localhost:9229/local_other' })}`,
      }),
      'AUTH_INVALID_TOKEN',
    ],
    [
      'another client',
      async () => ({
        authorization: `Bearer ${await forgeToken(await cognitoLocalKey(), { client_id: 'someone-else' })}`,
      }),
      'AUTH_INVALID_TOKEN',
    ],
    ['an ID token', async () => ({ authorization: `Bearer ${alice.idToken}` }), 'AUTH_INVALID_TOKEN'],
  ];
  it.each(cases)('refuses a %s token with 401 and WWW-Authenticate', async (_name, headers, code) => {
    const res = await me(await headers());
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.json()).toMatchObject({ error: { code } });
  });

  it('keeps public routes public and unknown routes 404', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/v1/plans' })).statusCode).toBe(200);
    const res = await t.app.inject({ method: 'GET', url: '/v1/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('takes the plan from the database, not from a token claim', async () => {
    const token = await forgeToken(await cognitoLocalKey(), { sub: alice.sub, 'custom:plan': 'pro', plan: 'pro' });
    const res = await me({ authorization: `Bearer ${token}` });
    expect(res.statusCode).toBe(200);
    expect(res.json().plan).toBe('free');
  });
});

describe('provisioning', () => {
  it('does not fail the request when Cognito GetUser is unreachable, and fills the email later', async () => {
    const s = stackInfo();
    const db = await createTestDatabase({
      // GetUser goes to a closed port; tokens still verify against the real JWKS.
      COGNITO_ENDPOINT: 'http://127.0.0.1:9',
      COGNITO_JWKS_URL: `${s.cognitoEndpoint}/${s.userPoolId}/.well-known/jwks.json`,
    });
    const offline = await buildTestApp({ db });
    const u = await createTestUser();
    try {
      const first = await offline.app.inject({ method: 'GET', url: '/v1/me', headers: auth(u) });
      expect(first.statusCode).toBe(200);
      expect(first.json()).toMatchObject({ id: u.sub, email: null });
    } finally {
      await offline.close();
    }
    const online = await buildTestApp({ db: { ...db, config: testConfig(db.url) } });
    try {
      const later = await online.app.inject({ method: 'GET', url: '/v1/me', headers: auth(u) });
      expect(later.json()).toMatchObject({ id: u.sub, email: u.email });
    } finally {
      await online.close();
    }
  });
});
