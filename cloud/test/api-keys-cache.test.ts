/**
 * The per-process key cache cannot outrun a revocation (decision 0161). TCP proxies between
 * Postgres and the authenticator's LISTEN connection, and between Postgres and the app pool (whose
 * connections listen too), hold back what Postgres sends, so the revoke's notification is
 * committed but has NOT reached the process when the next request arrives — the case where a
 * cache alone would still serve the key. What catches it is an answer to a query sent after the
 * request arrived: on the dedicated connection when nothing else runs, or on a pool connection
 * (the request's own queries) — an answer cannot overtake the notification.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyAuthenticator } from '../src/api-keys/authenticator.ts';
import { newApiKey } from '../src/api-keys/key-format.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { createTestDatabase, type TestDatabase } from './support/index.ts';

/** Forwards a TCP connection; while `hold` is on, bytes from the server are queued, not delivered. */
function holdingProxy(target: URL) {
  let hold = false;
  const queued: (() => void)[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    upstream.on('data', (chunk) => {
      const deliver = () => client.write(chunk);
      if (hold) queued.push(deliver);
      else deliver();
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return {
    server,
    hold: () => void (hold = true),
    release: () => {
      hold = false;
      for (const d of queued.splice(0)) d();
    },
    held: () => queued.length,
  };
}

let db: TestDatabase;
let pool: Pool;
/** In front of the dedicated LISTEN connection. */
let proxy: ReturnType<typeof holdingProxy>;
/** In front of the app pool's connections. */
let poolProxy: ReturnType<typeof holdingProxy>;
let auth: ApiKeyAuthenticator;
const key = newApiKey();

/** A proxy to Postgres listening on loopback, and the app URL through it. */
async function proxied(): Promise<{ proxy: ReturnType<typeof holdingProxy>; url: string }> {
  const app = new URL(db.config.database.appUrl);
  const p = holdingProxy(app);
  await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
  const via = new URL(app);
  via.hostname = '127.0.0.1';
  via.port = String((p.server.address() as net.AddressInfo).port);
  return { proxy: p, url: via.toString() };
}

beforeAll(async () => {
  db = await createTestDatabase();
  const admin = createPool(db.config, 'admin', { max: 1 });
  await admin.query(`INSERT INTO users (id) VALUES ('cache-user')`);
  await admin.query(
    `INSERT INTO api_keys (id, user_id, name, prefix, hash, scopes) VALUES ($1, 'cache-user', 'k', $2, $3, '{generate}')`,
    ['key_0000000000000000000001', key.prefix, key.hash],
  );
  await admin.end();
  const listen = await proxied();
  proxy = listen.proxy;
  const viaPool = await proxied();
  poolProxy = viaPool.proxy;
  pool = createPool({ ...db.config, database: { ...db.config.database, appUrl: viaPool.url } }, 'app', { max: 2 });
  auth = new ApiKeyAuthenticator({ pool, listenUrl: listen.url });
  await auth.start();
});
afterAll(async () => {
  await auth?.stop();
  proxy?.release();
  poolProxy?.release();
  await new Promise((r) => proxy?.server.close(r));
  await pool?.end();
  await new Promise((r) => poolProxy?.server.close(r));
});

/** Opens both pool connections and waits until both confirm requests (LISTEN done, then trusted). */
async function poolTrusted(): Promise<void> {
  for (let i = 0; i < 100 && auth.confirmingConnections < 2; i++) {
    await Promise.all([pool.query('SELECT pg_sleep(0.01)'), pool.query('SELECT pg_sleep(0.01)')]);
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(pool.totalCount).toBe(2);
  expect(auth.confirmingConnections).toBe(2);
}

describe('a cached key and a revocation that has not arrived yet', () => {
  it('is served from the cache while nothing is revoked', async () => {
    expect(auth.caching).toBe(true);
    expect((await auth.authenticate(key.key)).userId).toBe('cache-user');
    expect(auth.cachedKeys).toBe(1);
    // A second use answers from the cache (the round trip alone, no lookup) and stays valid.
    expect((await auth.authenticate(key.key)).keyId).toBe('key_0000000000000000000001');
  });

  it('is refused once the round trip is back, although the notification was held until then', async () => {
    proxy.hold();
    poolProxy.hold();
    const admin = createPool(db.config, 'admin', { max: 1 });
    await admin.query(`UPDATE api_keys SET revoked_at = now() WHERE hash = $1`, [key.hash]);
    await admin.end();
    // The revoke has committed; its notification sits in the proxy. The cache still holds the key.
    expect(auth.cachedKeys).toBe(1);
    const { principal, confirm } = await auth.begin(key.key);
    expect(principal.userId).toBe('cache-user'); // what a cache alone would have served
    let settled = false;
    const outcome = confirm().then(
      () => 'confirmed',
      (e: { code?: string }) => e.code,
    );
    void outcome.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(settled).toBe(false); // the confirmation waits for the listening connection
    expect(proxy.held()).toBeGreaterThan(0);
    proxy.release();
    poolProxy.release();
    expect(await outcome).toBe('API_KEY_REVOKED');
    await expect(auth.authenticate(key.key)).rejects.toMatchObject({ code: 'API_KEY_REVOKED' });
  });

  it("is refused by the request's own query on a pool connection, with the listening connection held", async () => {
    const k3 = newApiKey();
    const admin = createPool(db.config, 'admin', { max: 1 });
    try {
      await admin.query(
        `INSERT INTO api_keys (id, user_id, name, prefix, hash, scopes) VALUES ($1, 'cache-user', 'k3', $2, $3, '{generate}')`,
        ['key_0000000000000000000003', k3.prefix, k3.hash],
      );
      await auth.authenticate(k3.key);
      await poolTrusted();
      // Nothing revoked: a pool answer alone confirms a cached key (the dedicated connection is held).
      proxy.hold();
      const live = await auth.begin(k3.key);
      await pool.query('SELECT 1');
      await live.confirm();
      // Revoked: the notification reaches the pool connection ahead of the query's answer.
      poolProxy.hold();
      await admin.query(`UPDATE api_keys SET revoked_at = now() WHERE hash = $1`, [k3.hash]);
      const { confirm } = await auth.begin(k3.key);
      const answered = pool.query('SELECT 1');
      await new Promise((r) => setTimeout(r, 100));
      poolProxy.release();
      await answered;
      await expect(confirm()).rejects.toMatchObject({ code: 'API_KEY_REVOKED' });
    } finally {
      proxy.release();
      poolProxy.release();
      await admin.end();
    }
  });
});

describe('when the listening connection drops', () => {
  it('empties the cache, looks every key up until it is back, then caches again', async () => {
    const k2 = newApiKey();
    const admin = createPool(db.config, 'admin', { max: 1 });
    try {
      await admin.query(
        `INSERT INTO api_keys (id, user_id, name, prefix, hash, scopes) VALUES ($1, 'cache-user', 'k2', $2, $3, '{generate}')`,
        ['key_0000000000000000000002', k2.prefix, k2.hash],
      );
      expect((await auth.authenticate(k2.key)).keyId).toBe('key_0000000000000000000002');
      expect(auth.cachedKeys).toBeGreaterThan(0);
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name = 'atelier-api-keys' AND datname = current_database()`,
      );
      for (let i = 0; i < 100 && auth.caching; i++) await new Promise((r) => setTimeout(r, 20));
      expect(auth.caching).toBe(false);
      expect(auth.cachedKeys).toBe(0);
      // A revocation while nobody listens: its notification is lost, the lookup still sees it.
      await admin.query(`UPDATE api_keys SET revoked_at = now() WHERE hash = $1`, [k2.hash]);
      await expect(auth.authenticate(k2.key)).rejects.toMatchObject({ code: 'API_KEY_REVOKED' });
      // The listener comes back by itself and caching resumes.
      for (let i = 0; i < 250 && !auth.caching; i++) await new Promise((r) => setTimeout(r, 20));
      expect(auth.caching).toBe(true);
    } finally {
      await admin.end();
    }
  });
});
