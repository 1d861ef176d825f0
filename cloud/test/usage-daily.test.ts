import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_HEADER, UsageDaily } from '@atelier/common';
import { withUserTx } from '../src/db/tx.ts';
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
let carol: TestUser;
const cli = path.join(import.meta.dirname, '../src/admin/main.ts');

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  [alice, bob, carol] = await Promise.all([createTestUser(), createTestUser(), createTestUser()]);
  for (const u of [alice, bob, carol])
    expect((await t.app.inject({ url: '/v1/me', headers: auth(u) })).statusCode).toBe(200);
});
afterAll(() => t.close());

const day = (d: Date) => d.toISOString().slice(0, 10);
const submit = (u: TestUser, count: number, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/generations',
    headers: { ...auth(u), ...headers },
    payload: { prompt: 'a lighthouse', count },
  });
/** Marks the user's open jobs delivered (as the worker would), so the next submission fits the concurrency limit. */
const finishAll = (u: TestUser) =>
  t.adminPool.query(
    `UPDATE generations SET status = 'succeeded', started_at = now(), finished_at = now()
      WHERE user_id = $1 AND status IN ('queued', 'running')`,
    [u.sub],
  );
const daily = (u: TestUser, qs = '') => t.app.inject({ url: `/v1/usage/daily${qs}`, headers: auth(u) });

function admin(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: t.config.database.url, LOG_LEVEL: 'silent' },
  });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
}

describe('GET /v1/usage/daily', () => {
  it('counts the cloud images of each day by source, nets refunds, and gives the limit and what is left', async () => {
    const now = new Date();
    const today = day(now);
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const prevStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
    const prevDay5 = new Date(prevStart.getTime() + 4 * 86_400_000 + 3_600_000);

    // The previous period, as it was charged then: a 3-image generation on its 5th day.
    await t.adminPool.query(
      `INSERT INTO usage_periods (user_id, period_start, period_end, plan, used, "limit") VALUES ($1, $2, $3, 'free', 3, 100)`,
      [alice.sub, prevStart, monthStart],
    );
    await t.adminPool.query(
      `INSERT INTO generations (id, user_id, params, image_count, priority, progress_total, period_start, status, created_at, source)
       VALUES ('gen_PREVIOUSPERIOD000000001', $1, '{}', 3, 0, 3, $2, 'succeeded', $3, 'api')`,
      [alice.sub, prevStart, prevDay5],
    );
    await t.adminPool.query(
      `INSERT INTO usage_ledger (user_id, generation_id, kind, amount, period_start, created_at)
       VALUES ($1, 'gen_PREVIOUSPERIOD000000001', 'reserve', 3, $2, $3)`,
      [alice.sub, prevStart, prevDay5],
    );

    // Today: 2 + 1 images from the desktop app, 1 from a script, and 4 canceled before they
    // started (reserved, then refunded: they net to nothing).
    expect((await submit(alice, 2, { [CLIENT_HEADER]: 'desktop' })).statusCode).toBe(202);
    await finishAll(alice);
    expect((await submit(alice, 1, { [CLIENT_HEADER]: 'desktop/1.4.0' })).statusCode).toBe(202);
    await finishAll(alice);
    expect((await submit(alice, 1)).statusCode).toBe(202);
    await finishAll(alice);
    const canceled = await submit(alice, 4, { [CLIENT_HEADER]: 'desktop' });
    expect(canceled.statusCode).toBe(202);
    const cancel = await t.app.inject({
      method: 'POST',
      url: `/v1/generations/${canceled.json().id}/cancel`,
      headers: auth(alice),
    });
    expect(cancel.statusCode).toBe(200);

    const res = await daily(alice);
    expect(res.statusCode).toBe(200);
    const body = UsageDaily.parse(res.json());
    expect(body.from).toBe(day(prevStart));
    expect(body.to).toBe(day(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0))));
    expect(body.current).toMatchObject({
      periodStart: monthStart.toISOString(),
      plan: 'free',
      used: 4,
      limit: 100,
      left: 96,
    });
    expect(body.previous).toMatchObject({ periodStart: prevStart.toISOString(), used: 3, limit: 100 });
    // Every day of both periods, zeros included.
    const span = Math.round((Date.parse(`${body.to}T00:00:00Z`) - prevStart.getTime()) / 86_400_000) + 1;
    expect(body.days).toHaveLength(span);
    expect(body.days.find((d) => d.date === today)).toEqual({ date: today, desktop: 3, api: 1, adjusted: 0 });
    expect(body.days.find((d) => d.date === day(prevDay5))).toEqual({
      date: day(prevDay5),
      desktop: 0,
      api: 3,
      adjusted: 0,
    });
    const total = body.days.reduce((n, d) => n + d.desktop + d.api + d.adjusted, 0);
    expect(total).toBe(body.current.used + body.previous.used);

    // An operator adjustment shows as such on its day and moves `used` and `left` with it.
    expect(admin('set-usage', alice.sub, '10').code).toBe(0);
    const after = UsageDaily.parse((await daily(alice)).json());
    expect(after.current).toMatchObject({ used: 10, left: 90 });
    expect(after.days.find((d) => d.date === today)).toEqual({ date: today, desktop: 3, api: 1, adjusted: 6 });

    // A narrower range is just those days.
    const one = UsageDaily.parse((await daily(alice, `?from=${today}&to=${today}`)).json());
    expect(one.days).toEqual([{ date: today, desktop: 3, api: 1, adjusted: 6 }]);
  });

  it("another user sees only their own zeros, never alice's days, even asking for the same range", async () => {
    const res = await daily(bob);
    expect(res.statusCode).toBe(200);
    const body = UsageDaily.parse(res.json());
    expect(body.current).toMatchObject({ used: 0, left: 100 });
    expect(body.previous.used).toBe(0);
    expect(body.days.every((d) => d.desktop === 0 && d.api === 0 && d.adjusted === 0)).toBe(true);
    expect(JSON.stringify(body)).not.toContain(alice.sub);
  });

  it('on Pro, the periods are the billing periods, and the previous one is the usage row before it', async () => {
    const dave = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(dave) });
    const start = new Date(Date.now() - 10 * 86_400_000 - 3_600_000);
    const end = new Date(start.getTime() + 30 * 86_400_000);
    const prevStart = new Date(start.getTime() - 31 * 86_400_000);
    await t.adminPool.query(
      `INSERT INTO subscriptions (user_id, plan, status, current_period_start, current_period_end)
       VALUES ($1, 'pro', 'active', $2, $3)`,
      [dave.sub, start, end],
    );
    await t.adminPool.query(
      `INSERT INTO usage_periods (user_id, period_start, period_end, plan, used, "limit") VALUES ($1, $2, $3, 'pro', 7, 1000)`,
      [dave.sub, prevStart, start],
    );
    expect((await submit(dave, 2)).statusCode).toBe(202);
    const body = UsageDaily.parse((await daily(dave)).json());
    expect(body.current).toMatchObject({
      periodStart: start.toISOString(),
      periodEnd: end.toISOString(),
      plan: 'pro',
      used: 2,
      limit: 1000,
      left: 998,
    });
    expect(body.previous).toMatchObject({ periodStart: prevStart.toISOString(), plan: 'pro', used: 7, limit: 1000 });
    expect(body.from).toBe(day(prevStart));
    expect(body.to).toBe(day(new Date(end.getTime() - 1)));
    expect(body.days.find((d) => d.date === day(new Date()))).toMatchObject({ api: 2 });
  });

  it('refuses bad ranges with a stable code and no token with 401', async () => {
    const cases: [string, string][] = [
      ['?from=2026-11-10&to=2026-11-01', 'USAGE_RANGE_INVALID'],
      ['?from=2026-01-01&to=2026-06-30', 'USAGE_RANGE_INVALID'],
      ['?from=2026-02-30', 'VALIDATION_FAILED'],
      ['?to=yesterday', 'VALIDATION_FAILED'],
    ];
    for (const [qs, code] of cases) {
      const res = await daily(alice, qs);
      expect(res.statusCode, qs).toBe(400);
      expect(res.json().error.code, qs).toBe(code);
      expect(res.json().error.message, qs).toBeTruthy();
    }
    expect((await t.app.inject({ url: '/v1/usage/daily' })).statusCode).toBe(401);
  });
});

describe('GET /v1/admin/metrics is for admins only', () => {
  const range = () => {
    const today = day(new Date());
    return `?from=${day(new Date(Date.now() - 6 * 86_400_000))}&to=${today}`;
  };

  it('refuses a user who is not in the admins table, whatever their token says', async () => {
    const res = await t.app.inject({ url: `/v1/admin/metrics${range()}`, headers: auth(alice) });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('ADMIN_REQUIRED');
    expect((await t.app.inject({ url: `/v1/admin/metrics${range()}` })).statusCode).toBe(401);
  });

  it('answers an admin granted by the CLI with aggregates only, and stops when revoked', async () => {
    expect(admin('grant-admin', carol.email)).toMatchObject({ code: 0, out: `${carol.email}: now an admin.` });
    expect(admin('grant-admin', carol.email).out).toBe(`${carol.email}: already an admin.`);
    expect(admin('list-admins').out).toContain(`${carol.email}\t${carol.sub}`);
    const res = await t.app.inject({ url: `/v1/admin/metrics${range()}`, headers: auth(carol) });
    expect(res.statusCode).toBe(200);
    const m = res.json();
    // Alice's four delivered images today (the canceled batch is not delivered; dave's is still queued).
    expect(m.images).toBe(4);
    // Alice and dave submitted today.
    expect(m.activeUsers).toBe(2);
    // Nothing that names a person.
    const text = JSON.stringify(m);
    for (const u of [alice, bob, carol]) {
      expect(text).not.toContain(u.sub);
      expect(text).not.toContain(u.email);
    }
    const bad = await t.app.inject({ url: '/v1/admin/metrics?from=2026-05-01&to=2026-04-01', headers: auth(carol) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('USAGE_RANGE_INVALID');

    expect(admin('revoke-admin', carol.sub)).toMatchObject({
      code: 0,
      out: expect.stringContaining('no longer an admin'),
    });
    const after = await t.app.inject({ url: `/v1/admin/metrics${range()}`, headers: auth(carol) });
    expect(after.json().error.code).toBe('ADMIN_REQUIRED');
  });

  it('a user can neither see who the admins are nor make themselves one', async () => {
    expect(admin('grant-admin', carol.sub).code).toBe(0);
    await withUserTx(t.pool, alice.sub, async (tx) => {
      expect((await tx.query('SELECT user_id FROM admins')).rows).toEqual([]);
      expect((await tx.query('SELECT count(*)::int AS n FROM plan_changes')).rows[0].n).toBe(0);
    });
    await expect(
      withUserTx(t.pool, alice.sub, (tx) =>
        tx.query(`INSERT INTO admins (user_id, granted_by) VALUES ($1, 'me')`, [alice.sub]),
      ),
    ).rejects.toThrow(/permission denied/);
    const res = await t.app.inject({ url: `/v1/admin/metrics${range()}`, headers: auth(alice) });
    expect(res.json().error.code).toBe('ADMIN_REQUIRED');
  });
});

describe('API keys', () => {
  it("a generation made with a key counts as 'api' even when it claims to be the desktop; a generate-only key cannot read usage", async () => {
    const erin = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(erin) });
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: auth(erin),
      payload: { name: 'ci', scopes: ['generate'] },
    });
    expect(created.statusCode).toBe(201);
    const key = created.json().key as string;
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: { authorization: `Bearer ${key}`, [CLIENT_HEADER]: 'desktop' },
      payload: { prompt: 'a lighthouse', count: 2 },
    });
    expect(res.statusCode).toBe(202);
    const body = UsageDaily.parse((await daily(erin)).json());
    expect(body.days.find((d) => d.date === day(new Date()))).toMatchObject({ desktop: 0, api: 2 });
    // The chart needs the account:read scope (api-keys.test); the operator metrics take no key at all.
    for (const url of ['/v1/usage/daily', `/v1/admin/metrics?from=2026-11-01&to=2026-11-02`]) {
      const r = await t.app.inject({ url, headers: { authorization: `Bearer ${key}` } });
      expect(r.statusCode, url).toBe(403);
    }
  });
});

describe('OpenAPI', () => {
  it('documents both routes, their 400/403 codes and the client header that sets the split', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json() as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, unknown>; parameters?: { name: string; in: string }[] }>
      >;
    };
    const daily = doc.paths['/v1/usage/daily']!.get!;
    expect(Object.keys(daily.responses)).toEqual(expect.arrayContaining(['200', '400', '401']));
    expect(daily.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['from', 'to']));
    expect(Object.keys(doc.paths['/v1/admin/metrics']!.get!.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403']),
    );
    const submit = doc.paths['/v1/generations']!.post!;
    expect(submit.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: CLIENT_HEADER, in: 'header' })]),
    );
  });
});
