import { PLANS } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystemTx } from '../src/db/tx.ts';
import { setUsage } from '../src/quota/usage.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';

let t: TestApp;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  // First sight provisions both users.
  for (const u of [alice, bob]) expect((await t.app.inject({ url: '/v1/me', headers: auth(u) })).statusCode).toBe(200);
});
afterAll(() => t.close());

const submit = (
  u: TestUser,
  body: Record<string, unknown> = { prompt: 'a lighthouse' },
  headers: Record<string, string> = {},
) => t.app.inject({ method: 'POST', url: '/v1/generations', headers: { ...auth(u), ...headers }, payload: body });

async function usageOf(userId: string) {
  const used = await t.adminPool.query<{ used: number }>(
    `SELECT COALESCE(sum(used), 0)::int AS used FROM usage_periods WHERE user_id = $1`,
    [userId],
  );
  const ledger = await t.adminPool.query<{ total: number; reserves: number; refunds: number }>(
    `SELECT COALESCE(sum(amount), 0)::int AS total, count(*) FILTER (WHERE kind = 'reserve')::int AS reserves,
            count(*) FILTER (WHERE kind = 'refund')::int AS refunds FROM usage_ledger WHERE user_id = $1`,
    [userId],
  );
  return { used: used.rows[0]!.used, ...ledger.rows[0]! };
}

async function cancelAll(u: TestUser) {
  await t.adminPool.query(
    `UPDATE generations SET status = 'canceled' WHERE user_id = $1 AND status IN ('queued', 'running')`,
    [u.sub],
  );
}

describe('POST /v1/generations', () => {
  it('reserves quota, stores the generation with resolved params, and enqueues its job in one transaction', async () => {
    const res = await submit(alice, { prompt: 'a red fox', count: 2, seed: 42 });
    expect(res.statusCode).toBe(202);
    const g = res.json();
    expect(g).toMatchObject({
      status: 'queued',
      priority: PLANS.free.queuePriority,
      params: { prompt: 'a red fox', seed: 42, count: 2, model: 'sd-turbo' },
    });
    expect(g.id).toMatch(/^gen_/);
    expect(await usageOf(alice.sub)).toMatchObject({ used: 2, total: 2, reserves: 1 });
    const job = await t.adminPool.query(
      `SELECT data, priority, state FROM pgboss.job WHERE name = 'generations' AND data->>'generationId' = $1`,
      [g.id],
    );
    expect(job.rows).toEqual([{ data: { generationId: g.id, userId: alice.sub }, priority: 0, state: 'created' }]);
    const me = (await t.app.inject({ url: '/v1/me', headers: auth(alice) })).json();
    expect(me.usage.used).toBe(2);
    await cancelAll(alice);
  });

  it('lists every invalid field with VALIDATION_FAILED', async () => {
    const res = await submit(alice, { prompt: '', width: 13, steps: 0, extra: 1 });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error.code).toBe('VALIDATION_FAILED');
    const fields = body.error.details.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['prompt', 'width', 'steps']));
  });

  it('refuses what the plan does not allow with PLAN_REQUIRED naming the plan, before reserving', async () => {
    const before = await usageOf(alice.sub);
    const res = await submit(alice, { prompt: 'big', width: 2048, height: 2048 });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({
      code: 'PLAN_REQUIRED',
      details: { requiredPlan: 'pro', reason: 'resolution' },
    });
    expect(res.json().error.message).toMatch(/Pro/);
    const many = await submit(alice, { prompt: 'many', count: 8 });
    expect(many.json().error).toMatchObject({
      code: 'PLAN_REQUIRED',
      details: { requiredPlan: 'pro', reason: 'count' },
    });
    expect(await usageOf(alice.sub)).toEqual(before);
  });

  it('answers QUOTA_EXCEEDED with used, limit, periodEnd and upgradeUrl', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    await withSystemTx(t.systemPool, (tx) => setUsage(tx, u.sub, 100));
    const res = await submit(u);
    expect(res.statusCode).toBe(429);
    expect(res.json().error).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      details: { used: 100, limit: 100, upgradeUrl: expect.any(String), periodEnd: expect.any(String) },
    });
    // A batch of N reserves N: 3 left → a batch of 4 is refused, 3 is accepted.
    await withSystemTx(t.systemPool, (tx) => setUsage(tx, u.sub, 97));
    expect((await submit(u, { prompt: 'x', count: 4 })).statusCode).toBe(429);
    expect((await submit(u, { prompt: 'x', count: 3 })).statusCode).toBe(202);
    expect((await t.app.inject({ url: '/v1/me', headers: auth(u) })).json().usage.used).toBe(100);
  });

  it('200 concurrent requests at 99/100: exactly one 202, 199 × 429, and the ledger agrees', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    await withSystemTx(t.systemPool, (tx) => setUsage(tx, u.sub, 99));
    const before = await usageOf(u.sub);
    const results = await Promise.all(Array.from({ length: 200 }, () => submit(u)));
    const codes = results.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 202)).toHaveLength(1);
    expect(codes.filter((c) => c === 429)).toHaveLength(199);
    expect(results.filter((r) => r.statusCode === 429).every((r) => r.json().error.code === 'QUOTA_EXCEEDED')).toBe(
      true,
    );
    const after = await usageOf(u.sub);
    expect(after.used).toBe(100);
    expect(after.total - before.total).toBe(1);
    expect(after.reserves).toBe(1);
    const gens = await t.adminPool.query('SELECT count(*)::int AS n FROM generations WHERE user_id = $1', [u.sub]);
    expect(gens.rows[0].n).toBe(1);
  });

  it('the same race mixing API keys and sessions (issue 16): exactly one 202 across keys and tokens', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: auth(u),
        payload: { name: `race ${i}`, scopes: ['generate'] },
      });
      keys.push(res.json().key);
    }
    await withSystemTx(t.systemPool, (tx) => setUsage(tx, u.sub, 99));
    const before = await usageOf(u.sub);
    // Every fourth request by session, the rest spread over three keys of the same user.
    const headers = (i: number) => (i % 4 === 0 ? auth(u) : { authorization: `Bearer ${keys[(i % 4) - 1]}` });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        t.app.inject({ method: 'POST', url: '/v1/generations', headers: headers(i), payload: { prompt: 'a race' } }),
      ),
    );
    const codes = results.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 202)).toHaveLength(1);
    expect(codes.filter((c) => c === 429)).toHaveLength(199);
    expect(results.filter((r) => r.statusCode === 429).every((r) => r.json().error.code === 'QUOTA_EXCEEDED')).toBe(
      true,
    );
    const after = await usageOf(u.sub);
    expect(after.used).toBe(100);
    expect(after.total - before.total).toBe(1);
    const gens = await t.adminPool.query('SELECT count(*)::int AS n FROM generations WHERE user_id = $1', [u.sub]);
    expect(gens.rows[0].n).toBe(1);
  });

  it('Idempotency-Key: a retry returns the same generation and charges once; another body is 409', async () => {
    const u = await createTestUser();
    const key = `k-${Date.now()}`;
    const first = await submit(u, { prompt: 'same' }, { 'idempotency-key': key });
    const [again, racing] = await Promise.all([
      submit(u, { prompt: 'same' }, { 'idempotency-key': key }),
      submit(u, { prompt: 'same' }, { 'idempotency-key': key }),
    ]);
    expect(first.statusCode).toBe(202);
    expect(again.json().id).toBe(first.json().id);
    expect(racing.json().id).toBe(first.json().id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await usageOf(u.sub)).toMatchObject({ used: 1, reserves: 1 });
    const other = await submit(u, { prompt: 'different' }, { 'idempotency-key': key });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await usageOf(u.sub)).toMatchObject({ used: 1, reserves: 1 });
  });

  it('concurrent idempotent first requests still charge once', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    const rs = await Promise.all(
      Array.from({ length: 5 }, () => submit(u, { prompt: 'once' }, { 'idempotency-key': 'race' })),
    );
    expect(new Set(rs.map((r) => r.json().id)).size).toBe(1);
    expect(rs.every((r) => r.statusCode === 202)).toBe(true);
    expect(await usageOf(u.sub)).toMatchObject({ used: 1, reserves: 1 });
  });
});

describe('reading and canceling', () => {
  it('lists newest first with a cursor, and gets one by id', async () => {
    const u = await createTestUser();
    await t.adminPool.query(`INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING`, [u.sub]);
    await t.adminPool.query(`INSERT INTO subscriptions (user_id, plan, status) VALUES ($1, 'pro', 'active')`, [u.sub]);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submit(u, { prompt: `p${i}` })).json().id);
    const p1 = (await t.app.inject({ url: '/v1/generations?limit=2', headers: auth(u) })).json();
    expect(p1.items.map((g: { id: string }) => g.id)).toEqual([ids[4], ids[3]]);
    expect(p1.items[0].priority).toBe(PLANS.pro.queuePriority);
    const p2 = (
      await t.app.inject({ url: `/v1/generations?limit=2&cursor=${p1.nextCursor}`, headers: auth(u) })
    ).json();
    expect(p2.items.map((g: { id: string }) => g.id)).toEqual([ids[2], ids[1]]);
    const p3 = (
      await t.app.inject({ url: `/v1/generations?limit=2&cursor=${p2.nextCursor}`, headers: auth(u) })
    ).json();
    expect(p3).toMatchObject({ items: [{ id: ids[0] }], nextCursor: null });
    const one = await t.app.inject({ url: `/v1/generations/${ids[2]}`, headers: auth(u) });
    expect(one.json()).toMatchObject({ id: ids[2], params: { prompt: 'p2' } });
    expect((await t.app.inject({ url: '/v1/generations?cursor=zzz', headers: auth(u) })).statusCode).toBe(400);
  });

  it('cancel before start refunds once and cancels the job; a second cancel is 409', async () => {
    const u = await createTestUser();
    const g = (await submit(u, { prompt: 'cancel me', count: 3 })).json();
    expect(await usageOf(u.sub)).toMatchObject({ used: 3 });
    const res = await t.app.inject({ method: 'POST', url: `/v1/generations/${g.id}/cancel`, headers: auth(u) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: g.id, status: 'canceled' });
    expect(await usageOf(u.sub)).toMatchObject({ used: 0, total: 0, reserves: 1, refunds: 1 });
    const job = await t.adminPool.query(
      `SELECT state FROM pgboss.job WHERE id = (SELECT job_id::uuid FROM generations WHERE id = $1)`,
      [g.id],
    );
    expect(job.rows[0].state).toBe('cancelled');
    const again = await t.app.inject({ method: 'POST', url: `/v1/generations/${g.id}/cancel`, headers: auth(u) });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('GENERATION_NOT_CANCELABLE');
    expect(await usageOf(u.sub)).toMatchObject({ used: 0, refunds: 1 });
  });

  it("user B gets 404 on every one of user A's generation routes", async () => {
    const g = (await submit(alice, { prompt: 'private' })).json();
    const routes = [
      { method: 'GET' as const, url: `/v1/generations/${g.id}` },
      { method: 'POST' as const, url: `/v1/generations/${g.id}/cancel` },
    ];
    for (const r of routes) {
      const res = await t.app.inject({ ...r, headers: auth(bob) });
      expect(res.statusCode, r.url).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    const list = (await t.app.inject({ url: '/v1/generations', headers: auth(bob) })).json();
    expect(list.items.find((x: { id: string }) => x.id === g.id)).toBeUndefined();
    // Still queued for Alice: Bob's cancel did nothing.
    expect((await t.app.inject({ url: `/v1/generations/${g.id}`, headers: auth(alice) })).json().status).toBe('queued');
    await cancelAll(alice);
  });
});

describe('concurrent-jobs limit', () => {
  it('is exact under concurrent submissions: Free runs 2 at once, the rest get PLAN_REQUIRED', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(u, { prompt: `c${i}` })));
    expect(rs.filter((r) => r.statusCode === 202)).toHaveLength(PLANS.free.concurrentJobs);
    const refused = rs.filter((r) => r.statusCode !== 202);
    expect(refused.every((r) => r.statusCode === 403 && r.json().error.details.reason === 'concurrency')).toBe(true);
    expect(refused[0]!.json().error.details.requiredPlan).toBe('pro');
    expect(await usageOf(u.sub)).toMatchObject({ used: PLANS.free.concurrentJobs });
  });
});
