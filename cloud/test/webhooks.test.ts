// Signed outbound webhooks (issue 16) against the real stack: the API's routes on a real
// Postgres, the delivery worker on pg-boss, receivers as real HTTP servers on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppError, newId, WebhookEvent, type WebhookDelivery } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGenerations } from '../src/queue/generation-runner.ts';
import { PgBossJobQueue } from '../src/queue/pg-boss-job-queue.ts';
import { setUsage } from '../src/quota/usage.ts';
import { withSystemTx } from '../src/db/tx.ts';
import { createWebhookEmitter, pgBossWebhookJobs } from '../src/webhooks/emitter.ts';
import { createSecretBox } from '../src/webhooks/secret-box.ts';
import { deliverOnce, startWebhookWorker, type WebhookWorker } from '../src/webhooks/worker.ts';
import type { Resolver } from '../src/webhooks/ssrf.ts';
import { auth, buildTestApp, createTestDatabase, createTestUser, testConfig } from './support/index.ts';
import type { TestApp, TestUser } from './support/index.ts';
import { PEER_SECRET_KEY, StripePeer, eventObject, signWebhook } from './support/stripe-peer.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const WHSEC = 'whsec_webhooks_test';
const PRICE = 'price_pro_monthly';

// ── a receiver: every request recorded; behaviour per path ───────────────────────────────────
interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}
type Behaviour = (req: IncomingMessage, res: ServerResponse, n: number) => void;
const received: Received[] = [];
const behaviours = new Map<string, Behaviour>();
const hits = new Map<string, number>();
let receiver: Server;
let base: string;
const hanging: ServerResponse[] = [];

// ── the stack ─────────────────────────────────────────────────────────────────────────────────
let peer: StripePeer;
let t: TestApp; // development setting: private targets allowed (receivers on 127.0.0.1)
let strict: TestApp; // the default: private targets refused
let worker: WebhookWorker;
let alice: TestUser;
let bob: TestUser;
let verify: (secret: string, header: string | undefined, body: string, tol?: number, now?: number) => void;

/** A resolver for the strict app: names under .test resolve as the table says. */
const dns = new Map<string, string>([['public.example.test', '93.184.216.34']]);
const resolve: Resolver = async (host) => {
  const a = dns.get(host);
  if (!a) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return [{ address: a, family: a.includes(':') ? 6 : 4 }];
};

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const p = req.url ?? '/';
      received.push({ path: p, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const n = (hits.get(p) ?? 0) + 1;
      hits.set(p, n);
      (behaviours.get(p) ?? ((_q, r) => r.writeHead(200).end('ok')))(req, res, n);
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  peer = await StripePeer.start();
  const env = {
    WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true',
    WEBHOOKS_RETRY_DELAY_SECONDS: '1',
    WEBHOOKS_RETRY_LIMIT: '3',
    WEBHOOKS_TIMEOUT_MS: '2000',
    STRIPE_SECRET_KEY: PEER_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET: WHSEC,
    STRIPE_PRICE_PRO: PRICE,
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: String(peer.port),
    STRIPE_API_PROTOCOL: 'http',
    PUBLIC_API_URL: 'https://api.atelier.test',
  };
  const db = await createTestDatabase(env);
  t = await buildTestApp({ db });
  strict = await buildTestApp({ db, overrides: { config: testConfig(db.url), webhooks: { resolve } } });
  worker = await startWebhookWorker({
    config: t.config.webhooks,
    connectionString: t.config.database.systemUrl,
    systemPool: t.systemPool,
    pollingIntervalSeconds: 0.5,
  });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  for (const u of [alice, bob]) await t.app.inject({ url: '/v1/me', headers: auth(u) });

  // The documented verification snippet, exactly as docs/WEBHOOKS.md shows it.
  const doc = readFileSync(path.join(REPO, 'docs/WEBHOOKS.md'), 'utf8');
  const block = /<!-- verify-snippet:start -->\s*```ts\n([\s\S]*?)```\s*<!-- verify-snippet:end -->/.exec(doc);
  if (!block) throw new Error('docs/WEBHOOKS.md lost its verify snippet');
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'atelier-snippet-')), 'verify.ts');
  writeFileSync(file, block[1]!);
  verify = ((await import(/* @vite-ignore */ file)) as { verifyAtelierSignature: typeof verify })
    .verifyAtelierSignature;
}, 120_000);

afterAll(async () => {
  for (const r of hanging) r.destroy();
  await worker?.stop();
  await strict?.close();
  await t?.close();
  await peer?.close();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
});

// ── helpers ───────────────────────────────────────────────────────────────────────────────────
const req = (app: TestApp, method: string, url: string, user?: TestUser, payload?: object) =>
  app.app.inject({
    method: method as 'GET',
    url,
    headers: user ? auth(user) : {},
    ...(payload === undefined ? {} : { payload }),
  });

async function addEndpoint(user: TestUser, p: string, events: string[] = ['generation.succeeded']) {
  const r = await req(t, 'POST', '/v1/webhooks', user, { url: `${base}${p}`, events });
  expect(r.statusCode).toBe(201);
  return r.json() as { id: string; secret: string; url: string };
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 45_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const deliveries = async (user: TestUser, endpointId: string): Promise<WebhookDelivery[]> =>
  (await req(t, 'GET', `/v1/webhooks/${endpointId}/deliveries`, user)).json().items;

const settled = (user: TestUser, endpointId: string, id: string) =>
  until(`delivery ${id}`, async () => {
    const d = (await deliveries(user, endpointId)).find((x) => x.id === id);
    return d && (d.status === 'succeeded' || d.status === 'failed') ? d : null;
  });

const gotAt = (p: string) => received.filter((r) => r.path === p);

// ── endpoints ─────────────────────────────────────────────────────────────────────────────────
describe('endpoints', () => {
  it('creates with the secret shown once, lists, updates, rotates and deletes', async () => {
    const created = await addEndpoint(alice, '/crud', ['generation.succeeded', 'plan.changed']);
    expect(created.secret).toMatch(/^whsec_[0-9a-f]{64}$/);
    expect(created.id).toMatch(/^whk_/);
    const listed = (await req(t, 'GET', '/v1/webhooks', alice)).json().items;
    expect(listed).toEqual([
      expect.objectContaining({ id: created.id, events: ['generation.succeeded', 'plan.changed'] }),
    ]);
    expect(JSON.stringify(listed)).not.toContain(created.secret);
    const one = (await req(t, 'GET', `/v1/webhooks/${created.id}`, alice)).json();
    expect(one.secret).toBeUndefined();
    // At rest the secret is sealed, not stored as given.
    const row = await t.adminPool.query('SELECT secret_encrypted FROM webhook_endpoints WHERE id = $1', [created.id]);
    expect(row.rows[0].secret_encrypted).not.toContain(created.secret.slice(6, 20));

    const patched = await req(t, 'PATCH', `/v1/webhooks/${created.id}`, alice, {
      enabled: false,
      events: ['plan.changed'],
    });
    expect(patched.json()).toMatchObject({ enabled: false, events: ['plan.changed'] });
    const rotated = (await req(t, 'POST', `/v1/webhooks/${created.id}/rotate-secret`, alice)).json();
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);
    expect((await req(t, 'DELETE', `/v1/webhooks/${created.id}`, alice)).statusCode).toBe(204);
    expect((await req(t, 'GET', `/v1/webhooks/${created.id}`, alice)).statusCode).toBe(404);
  });

  it('refuses bad input with stable codes and writes nothing', async () => {
    const count = async () =>
      (await t.adminPool.query('SELECT count(*)::int AS n FROM webhook_endpoints WHERE user_id = $1', [bob.sub]))
        .rows[0].n;
    const before = await count();
    const cases: [object, string][] = [
      [{ url: 'not a url', events: ['plan.changed'] }, 'VALIDATION_FAILED'],
      [{ url: `${base}/x`, events: [] }, 'VALIDATION_FAILED'],
      [{ url: `${base}/x`, events: ['image.deleted'] }, 'VALIDATION_FAILED'],
      [{ url: `${base}/x`, events: ['plan.changed', 'plan.changed'] }, 'VALIDATION_FAILED'],
      [{ url: `${base}/x`, events: ['plan.changed'], userId: alice.sub }, 'VALIDATION_FAILED'],
      [{ url: 'ftp://example.com/x', events: ['plan.changed'] }, 'WEBHOOK_URL_INVALID'],
      [{ url: 'http://user:pw@127.0.0.1/x', events: ['plan.changed'] }, 'WEBHOOK_URL_INVALID'],
    ];
    for (const [body, code] of cases) {
      const r = await req(t, 'POST', '/v1/webhooks', bob, body);
      expect(r.json().error.code, JSON.stringify(body)).toBe(code);
    }
    expect(await count()).toBe(before);
  });

  it('caps endpoints per user', async () => {
    const u = await createTestUser();
    const made = [];
    for (let i = 0; i < 10; i++) made.push(await addEndpoint(u, `/cap-${i}`));
    const r = await req(t, 'POST', '/v1/webhooks', u, { url: `${base}/cap-x`, events: ['plan.changed'] });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('WEBHOOK_ENDPOINT_LIMIT');
    await req(t, 'DELETE', `/v1/webhooks/${made[0]!.id}`, u);
    expect(
      (await req(t, 'POST', '/v1/webhooks', u, { url: `${base}/cap-y`, events: ['plan.changed'] })).statusCode,
    ).toBe(201);
  });

  it("user B can neither read, change, replay, test nor learn of user A's endpoints and deliveries", async () => {
    const a = await addEndpoint(alice, '/cross', ['generation.succeeded']);
    const ping = (await req(t, 'POST', `/v1/webhooks/${a.id}/test`, alice)).json();
    await settled(alice, a.id, ping.id);
    const routes: [string, string, object?][] = [
      ['GET', `/v1/webhooks/${a.id}`],
      ['PATCH', `/v1/webhooks/${a.id}`, { enabled: false }],
      ['DELETE', `/v1/webhooks/${a.id}`],
      ['POST', `/v1/webhooks/${a.id}/rotate-secret`],
      ['GET', `/v1/webhooks/${a.id}/deliveries`],
      ['POST', `/v1/webhooks/${a.id}/deliveries/${ping.id}/replay`],
      ['POST', `/v1/webhooks/${a.id}/test`],
    ];
    const before = received.length;
    for (const [method, url, body] of routes) {
      const r = await req(t, method, url, bob, body);
      expect(r.statusCode, `${method} ${url}`).toBe(404);
      expect(r.json().error.code).toBe('NOT_FOUND');
    }
    // And the same with B's own endpoint id but A's delivery id.
    const b = await addEndpoint(bob, '/cross-b');
    const mixed = await req(t, 'POST', `/v1/webhooks/${b.id}/deliveries/${ping.id}/replay`, bob);
    expect(mixed.statusCode).toBe(404);
    expect((await req(t, 'GET', '/v1/webhooks', bob)).json().items.map((e: { id: string }) => e.id)).not.toContain(
      a.id,
    );
    // Nothing changed for A, nothing was sent.
    const still = (await req(t, 'GET', `/v1/webhooks/${a.id}`, alice)).json();
    expect(still.enabled).toBe(true);
    expect(await deliveries(alice, a.id)).toHaveLength(1);
    expect(received.length).toBe(before);
    // Unauthenticated: 401 everywhere.
    for (const [method, url] of routes) expect((await req(t, method, url)).statusCode).toBe(401);
  });
});

// ── signing and delivery ──────────────────────────────────────────────────────────────────────
describe('delivery', () => {
  it('signs each delivery so the documented snippet verifies it, and a replayed request is detectable by its timestamp', async () => {
    const e = await addEndpoint(alice, '/signed');
    const r = await req(t, 'POST', `/v1/webhooks/${e.id}/test`, alice);
    expect(r.statusCode).toBe(202);
    const d = await settled(alice, e.id, r.json().id);
    expect(d).toMatchObject({ status: 'succeeded', attempts: 1, responseCode: 200, error: null });
    expect(d.latencyMs).toBeGreaterThanOrEqual(0);
    const got = gotAt('/signed')[0]!;
    const header = got.headers['atelier-signature'] as string;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(() => verify(e.secret, header, got.body)).not.toThrow();
    const event = WebhookEvent.parse(JSON.parse(got.body));
    expect(event).toMatchObject({ type: 'ping', data: { endpointId: e.id } });
    expect(got.headers['atelier-event-id']).toBe(event.id);
    // Tampered body, wrong secret: refused.
    expect(() => verify(e.secret, header, got.body.replace('ping', 'pong'))).toThrow(/does not match/);
    expect(() => verify('whsec_other', header, got.body)).toThrow(/does not match/);
    // The same request captured and sent again ten minutes later: its timestamp gives it away.
    const t0 = Number(/t=(\d+)/.exec(header)![1]);
    expect(() => verify(e.secret, header, got.body, 300, t0 + 600)).toThrow(/tolerance/);

    // A replay through the API is a new delivery of the same event, freshly signed.
    const again = await req(t, 'POST', `/v1/webhooks/${e.id}/deliveries/${d.id}/replay`, alice);
    expect(again.statusCode).toBe(202);
    expect(again.json()).toMatchObject({ replayOf: d.id, eventId: d.eventId, status: 'pending' });
    await settled(alice, e.id, again.json().id);
    const second = gotAt('/signed')[1]!;
    expect(second.body).toBe(got.body);
    expect(() => verify(e.secret, second.headers['atelier-signature'] as string, second.body)).not.toThrow();

    // After rotation the old secret no longer verifies.
    const rotated = (await req(t, 'POST', `/v1/webhooks/${e.id}/rotate-secret`, alice)).json();
    const third = await req(t, 'POST', `/v1/webhooks/${e.id}/test`, alice);
    await settled(alice, e.id, third.json().id);
    const last = gotAt('/signed')[2]!;
    expect(() => verify(rotated.secret, last.headers['atelier-signature'] as string, last.body)).not.toThrow();
    expect(() => verify(e.secret, last.headers['atelier-signature'] as string, last.body)).toThrow();
  });

  it('a receiver that fails twice then succeeds gets exactly one successful delivery after three attempts', async () => {
    behaviours.set('/flaky', (_q, res, n) => res.writeHead(n <= 2 ? 503 : 200).end());
    const e = await addEndpoint(alice, '/flaky');
    const ping = (await req(t, 'POST', `/v1/webhooks/${e.id}/test`, alice)).json();
    const d = await settled(alice, e.id, ping.id);
    expect(d).toMatchObject({ status: 'succeeded', attempts: 3, responseCode: 200, error: null, nextAttemptAt: null });
    const all = await deliveries(alice, e.id);
    expect(all.filter((x) => x.status === 'succeeded')).toHaveLength(1);
    const got = gotAt('/flaky');
    expect(got).toHaveLength(3);
    // One event, three attempts: same event id and body each time.
    expect(new Set(got.map((g) => g.headers['atelier-event-id'])).size).toBe(1);
    expect(new Set(got.map((g) => g.body)).size).toBe(1);
  });

  it('a hanging receiver is cut off by the timeout without delaying another user’s delivery', async () => {
    behaviours.set('/hang', (_q, res) => hanging.push(res)); // never answers
    const slow = await addEndpoint(alice, '/hang');
    const fast = await addEndpoint(bob, '/prompt');
    const hung = (await req(t, 'POST', `/v1/webhooks/${slow.id}/test`, alice)).json();
    await until('the hanging request to arrive', async () => gotAt('/hang').length > 0);
    const ok = (await req(t, 'POST', `/v1/webhooks/${fast.id}/test`, bob)).json();
    const d = await settled(bob, fast.id, ok.id);
    expect(d.status).toBe('succeeded');
    // Bob's delivery completed while Alice's first attempt was still open.
    const aliceFirst = (await deliveries(alice, slow.id)).find((x) => x.id === hung.id)!;
    expect(aliceFirst.attempts).toBe(0);
    const cut = await until('the timeout to be recorded', async () => {
      const x = (await deliveries(alice, slow.id)).find((y) => y.id === hung.id)!;
      return x.attempts >= 1 ? x : null;
    });
    expect(cut).toMatchObject({ responseCode: null, error: 'timed out after 2000 ms' });
    expect(cut.status === 'retrying' || cut.status === 'failed').toBe(true);
    await req(t, 'PATCH', `/v1/webhooks/${slow.id}`, alice, { enabled: false });
  });

  it('does not follow redirects', async () => {
    behaviours.set('/redirect', (_q, res) => res.writeHead(302, { location: `${base}/redirect-target` }).end());
    const e = await addEndpoint(alice, '/redirect');
    const ping = (await req(t, 'POST', `/v1/webhooks/${e.id}/test`, alice)).json();
    await until('the first attempt', async () => {
      const x = (await deliveries(alice, e.id)).find((y) => y.id === ping.id)!;
      return x.attempts >= 1 ? x : null;
    }).then((x) =>
      expect(x).toMatchObject({ responseCode: 302, error: expect.stringMatching(/redirect 302 not followed/) }),
    );
    expect(gotAt('/redirect-target')).toHaveLength(0);
    await req(t, 'PATCH', `/v1/webhooks/${e.id}`, alice, { enabled: false });
  });

  it('reads at most a capped part of a huge response body', async () => {
    behaviours.set('/huge', (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = 'x'.repeat(64 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < 1000 && res.write(chunk)) sent++;
        if (sent < 1000 && !res.destroyed) res.once('drain', pump);
        else res.end();
      };
      pump();
    });
    const e = await addEndpoint(alice, '/huge');
    const ping = (await req(t, 'POST', `/v1/webhooks/${e.id}/test`, alice)).json();
    expect(await settled(alice, e.id, ping.id)).toMatchObject({ status: 'succeeded', responseCode: 200 });
  });
});

describe('key rotation', () => {
  it('a secret sealed under the previous key still signs, and is re-sealed under the new key at delivery', async () => {
    const e = await addEndpoint(alice, '/rotated-key');
    const sealedBefore = (
      await t.adminPool.query('SELECT secret_encrypted FROM webhook_endpoints WHERE id = $1', [e.id])
    ).rows[0].secret_encrypted as string;
    // WEBHOOKS_SECRET_KEY is now a new key; the old one is WEBHOOKS_SECRET_KEY_PREVIOUS.
    const rotated = { ...t.config.webhooks, secretKeys: [randomBytes(32), ...t.config.webhooks.secretKeys] };
    const noJobs = createWebhookEmitter({ enqueue: async () => {} });
    const [deliveryId] = await withSystemTx(t.systemPool, (tx) =>
      noJobs.emitTo(tx, alice.sub, [{ endpointId: e.id }], { type: 'ping', data: { endpointId: e.id } }),
    );
    expect(
      await deliverOnce({ config: rotated, systemPool: t.systemPool }, deliveryId!, { retryCount: 0, retryLimit: 3 }),
    ).toBe('succeeded');
    const got = gotAt('/rotated-key')[0]!;
    expect(() => verify(e.secret, got.headers['atelier-signature'] as string, got.body)).not.toThrow();
    const sealedAfter = (
      await t.adminPool.query('SELECT secret_encrypted FROM webhook_endpoints WHERE id = $1', [e.id])
    ).rows[0].secret_encrypted as string;
    expect(sealedAfter.split(':')[1]).not.toBe(sealedBefore.split(':')[1]);
    // Only the new key is needed from now on.
    expect(createSecretBox([rotated.secretKeys[0]!]).open(e.id, sealedAfter)).toEqual({
      secret: e.secret,
      stale: false,
    });
  });
});

// ── SSRF ──────────────────────────────────────────────────────────────────────────────────────
describe('outside development, private targets are refused', () => {
  it('refuses private, loopback, link-local and mapped addresses and plain http when the endpoint is saved', async () => {
    const cases: [string, string][] = [
      ['https://127.0.0.1/x', 'WEBHOOK_TARGET_FORBIDDEN'],
      ['https://10.1.2.3/x', 'WEBHOOK_TARGET_FORBIDDEN'],
      ['https://169.254.169.254/latest/meta-data/', 'WEBHOOK_TARGET_FORBIDDEN'],
      ['https://100.64.0.1/x', 'WEBHOOK_TARGET_FORBIDDEN'],
      ['https://[::1]/x', 'WEBHOOK_TARGET_FORBIDDEN'],
      ['https://[::ffff:127.0.0.1]/x', 'WEBHOOK_TARGET_FORBIDDEN'],
      ['https://[fd00::1]/x', 'WEBHOOK_TARGET_FORBIDDEN'],
      ['https://0.0.0.0/x', 'WEBHOOK_TARGET_FORBIDDEN'],
      ['https://2130706433/x', 'WEBHOOK_TARGET_FORBIDDEN'], // 127.0.0.1 written as one number
      ['https://unknown.example.test/x', 'WEBHOOK_URL_INVALID'],
      [`${base}/x`, 'WEBHOOK_URL_INVALID'], // http
    ];
    const before = (await t.adminPool.query('SELECT count(*)::int AS n FROM webhook_endpoints')).rows[0].n;
    for (const [url, code] of cases) {
      const r = await req(strict, 'POST', '/v1/webhooks', alice, { url, events: ['plan.changed'] });
      expect(r.json().error?.code, url).toBe(code);
    }
    expect((await t.adminPool.query('SELECT count(*)::int AS n FROM webhook_endpoints')).rows[0].n).toBe(before);
    const ok = await req(strict, 'POST', '/v1/webhooks', alice, {
      url: 'https://public.example.test/hook',
      events: ['plan.changed'],
    });
    expect(ok.statusCode).toBe(201);
    await req(t, 'DELETE', `/v1/webhooks/${ok.json().id}`, alice);
  });

  it('checks again at delivery: a name re-pointed at a private address (DNS rebinding) is not called', async () => {
    dns.set('rebind.example.test', '93.184.216.34');
    const r = await req(strict, 'POST', '/v1/webhooks', alice, {
      url: 'https://rebind.example.test/hook',
      events: ['plan.changed'],
    });
    expect(r.statusCode).toBe(201);
    const id = r.json().id;
    dns.set('rebind.example.test', '127.0.0.1');
    // A delivery row with no job (so the running worker cannot take it), attempted here with the
    // strict policy and the same resolver, which now answers 127.0.0.1.
    const noJobs = createWebhookEmitter({ enqueue: async () => {} });
    const [deliveryId] = await withSystemTx(t.systemPool, (tx) =>
      noJobs.emitTo(tx, alice.sub, [{ endpointId: id }], { type: 'ping', data: { endpointId: id } }),
    );
    const before = received.length;
    const outcome = await deliverOnce(
      { config: strict.config.webhooks, systemPool: strict.systemPool, resolve },
      deliveryId!,
      { retryCount: 0, retryLimit: 3 },
    );
    expect(received.length).toBe(before);
    expect(outcome).toBe('failed');
    const row = (
      await t.adminPool.query('SELECT status, last_error AS error FROM webhook_deliveries WHERE id = $1', [deliveryId])
    ).rows[0];
    expect(row).toEqual({ status: 'failed', error: 'refused: the URL resolves to a non-public address' });
    await req(t, 'DELETE', `/v1/webhooks/${id}`, alice);
  });
});

// ── events ────────────────────────────────────────────────────────────────────────────────────
describe('events', () => {
  it('generation.succeeded and generation.failed fire from the worker’s outcome transaction', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    await addEndpoint(u, '/gen', ['generation.succeeded', 'generation.failed']);
    const consumer = new PgBossJobQueue({
      connectionString: t.config.database.systemUrl,
      queue: t.config.queue,
      mode: 'consumer',
    });
    await consumer.start();
    const imageId = newId('img');
    try {
      await runGenerations({
        queue: consumer,
        pool: t.systemPool,
        concurrency: 1,
        webhooks: createWebhookEmitter(pgBossWebhookJobs(consumer.boss, t.config.webhooks)),
        generate: async (gen) => {
          if (gen.params.prompt === 'fail') throw new AppError('ENGINE_MODEL_INVALID');
          return { imageIds: [imageId] };
        },
      });
      const submit = async (prompt: string) => {
        const r = await req(t, 'POST', '/v1/generations', u, { prompt, width: 64, height: 64, steps: 1 });
        expect(r.statusCode).toBe(202);
        return r.json().id as string;
      };
      const ok = await submit('a red circle');
      const bad = await submit('fail');
      await until('both events', async () => gotAt('/gen').length >= 2);
      const events = gotAt('/gen').map((g) => WebhookEvent.parse(JSON.parse(g.body)));
      expect(events).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'generation.succeeded', data: { generationId: ok, imageIds: [imageId] } }),
          expect.objectContaining({
            type: 'generation.failed',
            data: { generationId: bad, errorCode: 'ENGINE_MODEL_INVALID' },
          }),
        ]),
      );
    } finally {
      await consumer.stop(1000);
    }
  });

  it('an event exists only if its transaction commits: a rolled-back change leaves no delivery and no job', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    const e = await addEndpoint(u, '/rollback', ['plan.changed']);
    const emitter = createWebhookEmitter(pgBossWebhookJobs(t.queue.boss, t.config.webhooks));
    const jobs = async () =>
      (await t.adminPool.query(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'webhook_deliveries'`)).rows[0]
        .n as number;
    const before = await jobs();
    await expect(
      withSystemTx(t.systemPool, async (tx) => {
        await emitter.emit(tx, u.sub, { type: 'plan.changed', data: { plan: 'pro' } });
        throw new Error('the state change failed');
      }),
    ).rejects.toThrow('the state change failed');
    expect(await deliveries(u, e.id)).toEqual([]);
    expect(await jobs()).toBe(before);
    // The same emission committed: one delivery, one job, and it arrives.
    const [id] = await withSystemTx(t.systemPool, (tx) =>
      emitter.emit(tx, u.sub, { type: 'plan.changed', data: { plan: 'pro' } }),
    );
    expect(await jobs()).toBe(before + 1);
    expect(await settled(u, e.id, id!)).toMatchObject({ status: 'succeeded' });
    expect(gotAt('/rollback')).toHaveLength(1);
  });

  it('usage.threshold fires at 80 % and at 100 %, once per period each', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    await addEndpoint(u, '/usage', ['usage.threshold']);
    // Pro (1000 images, 8 jobs at once): the queued jobs of this test never hit the free plan's 2-job cap.
    await t.adminPool.query(`INSERT INTO subscriptions (user_id, plan, status) VALUES ($1, 'pro', 'active')`, [u.sub]);
    const submit = async () =>
      (await req(t, 'POST', '/v1/generations', u, { prompt: 'quota', width: 64, height: 64, steps: 1 })).statusCode;
    await withSystemTx(t.adminPool, (tx) => setUsage(tx, u.sub, 798));
    expect(await submit()).toBe(202); // 79 %: nothing
    expect(await submit()).toBe(202); // 80 %
    expect(await submit()).toBe(202); // 81 %: already sent this period
    await withSystemTx(t.adminPool, (tx) => setUsage(tx, u.sub, 999));
    expect(await submit()).toBe(202); // 100 %
    expect(await submit()).toBe(429); // over quota: nothing reserved, nothing sent
    await until('two threshold events', async () => gotAt('/usage').length >= 2);
    await new Promise((r) => setTimeout(r, 1500)); // room for a wrong third one to arrive
    const events = gotAt('/usage').map((g) => WebhookEvent.parse(JSON.parse(g.body)));
    // Each delivery is a job of its own: they may arrive in either order (as Stripe's do).
    expect(
      events
        .map((e) => e.type === 'usage.threshold' && [e.data.threshold, e.data.used, e.data.limit])
        .sort((x, y) => (x ? x[0]! : 0) - (y ? y[0]! : 0)),
    ).toEqual([
      [80, 800, 1000],
      [100, 1000, 1000],
    ]);
  });

  it('plan.changed fires through the Stripe webhook path', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    await addEndpoint(u, '/plan', ['plan.changed']);
    const checkout = await req(t, 'POST', '/v1/billing/checkout', u, { plan: 'pro' });
    expect(checkout.statusCode).toBe(200);
    const customer = peer.sent('POST', '/v1/checkout/sessions').find((r) => r.form.client_reference_id === u.sub)!.form
      .customer!;
    const now = new Date();
    const sub = peer.putSubscription({
      customer,
      status: 'active',
      priceId: PRICE,
      periodStart: now,
      periodEnd: new Date(now.getTime() + 30 * 86_400_000),
    });
    const { payload, headers } = signWebhook(eventObject('customer.subscription.created', sub), WHSEC, {
      timestamp: now,
    });
    const r = await t.app.inject({ method: 'POST', url: '/v1/webhooks/stripe', headers, payload });
    expect(r.json()).toEqual({ received: true, outcome: 'applied' });
    await until('plan.changed', async () => gotAt('/plan').length >= 1);
    const event = WebhookEvent.parse(JSON.parse(gotAt('/plan')[0]!.body));
    expect(event).toMatchObject({ type: 'plan.changed', data: { plan: 'pro' } });
  });
});

describe('contract', () => {
  it('documents the routes and every payload in the OpenAPI document', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json();
    for (const p of [
      '/v1/webhooks',
      '/v1/webhooks/{id}',
      '/v1/webhooks/{id}/rotate-secret',
      '/v1/webhooks/{id}/deliveries',
      '/v1/webhooks/{id}/deliveries/{deliveryId}/replay',
      '/v1/webhooks/{id}/test',
    ])
      expect(doc.paths[p], p).toBeDefined();
    expect(Object.keys(doc['x-webhooks']).sort()).toEqual(
      ['generation.failed', 'generation.succeeded', 'ping', 'plan.changed', 'usage.threshold'].sort(),
    );
    expect(doc.components.schemas.WebhookUsageThreshold.properties.data.properties.threshold).toBeDefined();
    expect(doc.paths['/v1/webhooks'].post.responses['201']).toBeDefined();
  });
});
