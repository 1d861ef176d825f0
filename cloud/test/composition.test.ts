// The API is composed from named plugins that decorate the instance; the authenticated routes
// run behind one hook; Atelier's int8 parser is scoped to its own pools.
import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate } from '../src/api/plugins/auth.ts';
import limitsPlugin from '../src/api/plugins/limits.ts';
import { AUTHENTICATED_ROUTES, buildApp } from '../src/app.ts';
import { createPool } from '../src/db/pool.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestDatabase,
} from './support/index.ts';

let db: TestDatabase;
let t: TestApp;

beforeAll(async () => {
  db = await createTestDatabase();
  t = await buildTestApp({ db });
});
afterAll(async () => t?.close());

describe('named plugins', () => {
  it('registers db, queue, events, metrics, limits, billing, auth, generations, gallery and periodic by name', () => {
    for (const name of [
      'db',
      'queue',
      'events',
      'metrics',
      'limits',
      'billing',
      'auth',
      'generations',
      'gallery',
      'periodic',
    ])
      expect({ name, registered: t.app.hasPlugin(name) }).toEqual({ name, registered: true });
  });

  it('decorates the instance with the collaborators routes use', () => {
    expect(t.app.db.app).toBe(t.pool);
    expect(t.app.db.system).toBe(t.systemPool);
    expect(t.app.queue).toBe(t.queue);
    expect(t.app.events).toBe(t.events);
    expect(typeof t.app.generations.submit).toBe('function');
    expect(typeof t.app.gallery.listImages).toBe('function');
    expect(t.app.billing).toBeNull(); // no Stripe keys in this config
    expect(t.app.limits.store).toBe('memory'); // no REDIS_URL
    expect(typeof t.app.verifier.verify).toBe('function');
  });

  it('a plugin refuses to load without the plugins it depends on', async () => {
    const bare = Fastify();
    bare.register(authenticate);
    await expect(bare.ready()).rejects.toThrow(/dependency 'auth'|auth.*not registered/i);
    const noMetrics = Fastify();
    noMetrics.register(limitsPlugin, { config: db.config.limits });
    await expect(noMetrics.ready()).rejects.toThrow(/metrics/);
  });

  it('a route marked public inside the authenticated scope stops the app from building', async () => {
    const misplaced = async (api: FastifyInstance) => {
      api.get('/v1/oops', { config: { auth: false } }, async () => ({ ok: true }));
    };
    AUTHENTICATED_ROUTES.push(misplaced);
    try {
      await expect(
        buildApp({
          config: db.config,
          pool: t.pool,
          systemPool: t.systemPool,
          queue: t.queue,
          events: t.events,
          logger: false,
        }),
      ).rejects.toThrow(/GET \/v1\/oops is marked public but registered in the authenticated scope/);
    } finally {
      AUTHENTICATED_ROUTES.splice(AUTHENTICATED_ROUTES.indexOf(misplaced), 1);
    }
  });

  it('every /v1 route but the public ones is behind the authenticate hook, and those answer 200 for a user', async () => {
    const guarded = t.app.registeredRoutes().filter((r) => !r.public);
    expect(guarded.map((r) => `${r.method} ${r.url}`)).toEqual(
      expect.arrayContaining([
        'GET /v1/me',
        'POST /v1/generations',
        'GET /v1/images',
        'GET /v1/boards',
        'POST /v1/billing/checkout',
      ]),
    );
    expect(guarded.every((r) => r.url.startsWith('/v1/'))).toBe(true);
    const user = await createTestUser();
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', headers: auth(user) });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ id: user.sub, plan: 'free' });
    // The OpenAPI document lists 401 on the authenticated routes only.
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(Object.keys(doc.paths['/v1/me']!.get!.responses)).toContain('401');
    expect(Object.keys(doc.paths['/v1/plans']!.get!.responses)).not.toContain('401');
  });
});

describe('int8 parsing is scoped to Atelier pools', () => {
  it('an Atelier pool reads bigint as a number; a plain pg.Client in the same process still gets a string', async () => {
    const pool = createPool(db.config, 'admin', { max: 1 });
    const plain = new pg.Client({ connectionString: db.url });
    await plain.connect();
    try {
      const ours = await pool.query<{ n: unknown; c: unknown }>(
        'SELECT 9007199254740991::int8 AS n, count(*) AS c FROM generate_series(1, 3)',
      );
      expect(ours.rows[0]).toEqual({ n: 9007199254740991, c: 3 });
      const theirs = await plain.query<{ n: unknown; c: unknown }>(
        'SELECT 42::int8 AS n, count(*) AS c FROM generate_series(1, 3)',
      );
      expect(theirs.rows[0]).toEqual({ n: '42', c: '3' });
      // And the process-wide default is untouched.
      expect(pg.types.getTypeParser(20, 'text')('7')).toBe('7');
      // Other types keep pg's parsers in our pools (timestamptz → Date).
      const ts = await pool.query<{ t: unknown }>(`SELECT '2026-01-01T00:00:00Z'::timestamptz AS t`);
      expect(ts.rows[0]!.t).toBeInstanceOf(Date);
    } finally {
      await plain.end();
      await pool.end();
    }
  });
});
