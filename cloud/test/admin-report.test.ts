/**
 * The operator report against seeded data: `npm run admin -- report` (and GET /v1/admin/metrics)
 * must give the figures that the plain SQL below counts on its own — written here, not by calling
 * the report's query. Seeded with a fixed pseudo-random generator so a failure reproduces.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminMetrics } from '@atelier/common';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';

let t: TestApp;
let operator: TestUser;
const cli = path.join(import.meta.dirname, '../src/admin/main.ts');
const FROM = '2026-10-10';
const TO = '2026-10-16';
const T0 = new Date(`${FROM}T00:00:00Z`);
const T1 = new Date(Date.parse(`${TO}T00:00:00Z`) + 86_400_000);
const DAY = 86_400_000;

function admin(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: t.config.database.url, LOG_LEVEL: 'silent' },
  });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
}

/** mulberry32: small, seeded, good enough to spread test data. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  operator = await createTestUser();
  await t.app.inject({ url: '/v1/me', headers: auth(operator) });
  const rand = rng(16);
  const q = (text: string, values: unknown[]) => t.adminPool.query(text, values);
  // 14 users: most joined before the range, some during it, seed-12 after it; seed-13 is being deleted.
  for (let i = 0; i < 14; i++) {
    const joined = i === 12 ? new Date(T1.getTime() + DAY) : new Date(T0.getTime() + (i - 8) * DAY + 3_600_000 * i);
    await q(`INSERT INTO users (id, email, created_at, deleting_at) VALUES ($1, $2, $3, $4)`, [
      `seed-${i}`,
      `seed-${i}@example.test`,
      joined,
      i === 13 ? new Date() : null,
    ]);
  }
  // Plan history: 0 and 1 were Pro before the range; 1 left Pro before it; 2, 3 and 4 became Pro
  // during it (4 twice: left and came back); 5 became Pro after the range; 12 joined after the
  // range and became Pro then.
  const changes: [string, boolean, Date][] = [
    ['seed-0', true, new Date(T0.getTime() - 5 * DAY)],
    ['seed-1', true, new Date(T0.getTime() - 6 * DAY)],
    ['seed-1', false, new Date(T0.getTime() - 2 * DAY)],
    ['seed-2', true, new Date(T0.getTime() + 1 * DAY + 7_200_000)],
    ['seed-3', true, new Date(T0.getTime() + 6 * DAY + 80_000_000)],
    ['seed-4', true, new Date(T0.getTime() + 2 * DAY)],
    ['seed-4', false, new Date(T0.getTime() + 3 * DAY)],
    ['seed-4', true, new Date(T0.getTime() + 4 * DAY)],
    ['seed-5', true, new Date(T1.getTime() + DAY)],
    ['seed-12', true, new Date(T1.getTime() + 2 * DAY)],
  ];
  for (const [user, toPro, at] of changes)
    await q(`INSERT INTO plan_changes (user_id, to_pro, changed_at) VALUES ($1, $2, $3)`, [user, toPro, at]);
  // Plans now: 0, 2, 3, 4 Pro (12 and 13 Pro too, but 12 joined after the range and 13 is being deleted).
  for (const u of ['seed-0', 'seed-2', 'seed-3', 'seed-4', 'seed-12', 'seed-13'])
    await q(`INSERT INTO subscriptions (user_id, plan, status) VALUES ($1, 'pro', 'active')`, [u]);
  // 160 generations from two days before the range to two days after, in every status.
  const statuses = ['succeeded', 'succeeded', 'succeeded', 'failed', 'canceled', 'queued', 'running'] as const;
  for (let n = 0; n < 160; n++) {
    const user = `seed-${Math.floor(rand() * 12)}`;
    const created = new Date(T0.getTime() - 2 * DAY + Math.floor(rand() * 11 * DAY));
    const status = statuses[Math.floor(rand() * statuses.length)]!;
    const started =
      status === 'queued' || (status === 'canceled' && rand() < 0.5)
        ? null
        : new Date(created.getTime() + Math.floor(rand() * 90_000));
    const finished =
      status === 'succeeded' || status === 'failed' || status === 'canceled'
        ? new Date((started ?? created).getTime() + Math.floor(rand() * 3 * 3_600_000))
        : null;
    await q(
      `INSERT INTO generations (id, user_id, params, image_count, priority, progress_total, period_start,
                                status, created_at, started_at, finished_at)
       VALUES ($1, $2, '{}', $3, 0, 1, date_trunc('month', $4::timestamptz), $5, $4, $6, $7)`,
      [`gen_seed${String(n).padStart(18, '0')}`, user, 1 + Math.floor(rand() * 4), created, status, started, finished],
    );
  }
}, 120_000);
afterAll(() => t.close());

/** The figures, counted here with their own SQL and arithmetic. */
async function independent() {
  const q = async <R extends Record<string, unknown>>(text: string, values: unknown[] = []) =>
    (await t.adminPool.query<R>(text, values)).rows;
  const days: { date: string; activeUsers: number; images: number }[] = [];
  for (let d = T0.getTime(); d < T1.getTime(); d += DAY) {
    const a = new Date(d);
    const b = new Date(d + DAY);
    const [active] = await q<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT user_id FROM generations WHERE created_at >= $1 AND created_at < $2 GROUP BY user_id) s`,
      [a, b],
    );
    const delivered = await q<{ image_count: number }>(
      `SELECT image_count FROM generations WHERE status = 'succeeded' AND finished_at >= $1 AND finished_at < $2`,
      [a, b],
    );
    days.push({
      date: a.toISOString().slice(0, 10),
      activeUsers: active!.n,
      images: delivered.reduce((s, r) => s + r.image_count, 0),
    });
  }
  const activeRange = await q<{ user_id: string }>(
    `SELECT DISTINCT user_id FROM generations WHERE created_at >= $1 AND created_at < $2`,
    [T0, T1],
  );
  const users = await q<{
    id: string;
    created_at: Date;
    deleting_at: Date | null;
    sub: string | null;
    status: string | null;
  }>(
    `SELECT u.id, u.created_at, u.deleting_at, s.plan AS sub, s.status FROM users u LEFT JOIN subscriptions s ON s.user_id = u.id`,
  );
  const history = await q<{ user_id: string; to_pro: boolean; changed_at: Date }>(
    `SELECT user_id, to_pro, changed_at FROM plan_changes ORDER BY changed_at, id`,
  );
  const live = users.filter((u) => u.deleting_at === null && u.created_at < T1);
  const proNow = live.filter((u) => u.sub === 'pro' && (u.status === 'active' || u.status === 'trialing')).length;
  const wasProAtStart = (id: string) => {
    const before = history.filter((h) => h.user_id === id && h.changed_at < T0);
    return before.length > 0 && before[before.length - 1]!.to_pro;
  };
  const freeBase = live.filter((u) => !wasProAtStart(u.id));
  const converted = freeBase.filter((u) =>
    history.some((h) => h.user_id === u.id && h.to_pro && h.changed_at >= T0 && h.changed_at < T1),
  );
  const waits = (
    await q<{ created_at: Date; started_at: Date }>(
      `SELECT created_at, started_at FROM generations WHERE created_at >= $1 AND created_at < $2 AND started_at IS NOT NULL`,
      [T0, T1],
    )
  )
    .map((r) => r.started_at.getTime() - r.created_at.getTime())
    .sort((a, b) => a - b);
  // Linear interpolation between closest ranks (what percentile_cont does), done by hand.
  const pctl = (p: number) => {
    if (!waits.length) return null;
    const pos = p * (waits.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return Math.round(waits[lo]! + (waits[hi]! - waits[lo]!) * (pos - lo));
  };
  const finished = await q<{ status: string }>(
    `SELECT status FROM generations WHERE finished_at >= $1 AND finished_at < $2`,
    [T0, T1],
  );
  const ended = finished.filter((f) => f.status === 'succeeded' || f.status === 'failed');
  const failed = ended.filter((f) => f.status === 'failed').length;
  return {
    from: FROM,
    to: TO,
    days,
    activeUsers: activeRange.length,
    images: days.reduce((s, d) => s + d.images, 0),
    planMix: { free: live.length - proNow, pro: proNow },
    conversion: {
      freeUsers: freeBase.length,
      converted: converted.length,
      rate: freeBase.length ? converted.length / freeBase.length : 0,
    },
    queueWait: { samples: waits.length, p50Ms: pctl(0.5), p95Ms: pctl(0.95) },
    failures: { finished: ended.length, failed, rate: ended.length ? failed / ended.length : 0 },
  };
}

describe('npm run admin -- report', () => {
  it('prints, as JSON, exactly the figures counted independently', async () => {
    const want = await independent();
    // The seed must exercise every figure, or the comparison proves little.
    expect(want.days.every((d) => d.activeUsers > 0 && d.images > 0)).toBe(true);
    expect(want.conversion).toMatchObject({ freeUsers: 11, converted: 3 });
    expect(want.planMix).toEqual({ free: 8, pro: 4 });
    expect(want.failures.failed).toBeGreaterThan(0);
    expect(want.queueWait.samples).toBeGreaterThan(50);

    const r = admin('report', '--from', FROM, '--to', TO, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const got = AdminMetrics.parse(JSON.parse(r.out));
    expect({ ...got, conversion: { ...got.conversion, rate: 0 }, failures: { ...got.failures, rate: 0 } }).toEqual({
      ...want,
      conversion: { ...want.conversion, rate: 0 },
      failures: { ...want.failures, rate: 0 },
    });
    expect(got.conversion.rate).toBeCloseTo(want.conversion.rate, 12);
    expect(got.failures.rate).toBeCloseTo(want.failures.rate, 12);
  });

  it('prints the same as a table a person can read', async () => {
    const want = await independent();
    const r = admin('report', '--from', FROM, '--to', TO);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe(`Atelier Cloud report ${FROM} → ${TO} (UTC days)`);
    for (const d of want.days)
      expect(lines.find((l) => l.startsWith(d.date))?.split(/\s+/)).toEqual([
        d.date,
        String(d.activeUsers),
        String(d.images),
      ]);
    expect(r.out).toContain(`plan mix (now)          free ${want.planMix.free}, pro ${want.planMix.pro}`);
    expect(r.out).toContain(
      `conversion Free → Pro   ${want.conversion.converted} of ${want.conversion.freeUsers} (${(want.conversion.rate * 100).toFixed(1)} %)`,
    );
    expect(r.out).toContain(`failure rate            ${want.failures.failed} of ${want.failures.finished}`);
    expect(r.out).toContain(`(${want.queueWait.samples} jobs)`);
  });

  it('GET /v1/admin/metrics returns the same figures to an admin', async () => {
    expect(admin('grant-admin', operator.email).code).toBe(0);
    const res = await t.app.inject({ url: `/v1/admin/metrics?from=${FROM}&to=${TO}`, headers: auth(operator) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(JSON.parse(admin('report', '--from', FROM, '--to', TO, '--json').out));
  });

  it('refuses a bad range and says how to give one', () => {
    expect(admin('report', '--from', '2026-10-20', '--to', '2026-10-01')).toMatchObject({
      code: 1,
      err: expect.stringContaining('is after to'),
    });
    expect(admin('report', '--from', '10/01/2026')).toMatchObject({
      code: 1,
      err: expect.stringContaining('--from must be a day as YYYY-MM-DD'),
    });
    expect(admin('report', '--since', FROM).code).toBe(1);
  });

  it('records plan changes from every path that changes a plan (here the admin CLI)', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    expect(admin('set-plan', u.email, 'pro').code).toBe(0);
    expect(admin('set-plan', u.email, 'pro').code).toBe(0);
    expect(admin('set-plan', u.email, 'free').code).toBe(0);
    const rows = await t.adminPool.query(`SELECT to_pro FROM plan_changes WHERE user_id = $1 ORDER BY id`, [u.sub]);
    expect(rows.rows).toEqual([{ to_pro: true }, { to_pro: false }]);
  });

  it('account deletion takes the plan history and the admin row with the user', async () => {
    const u = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(u) });
    expect(admin('set-plan', u.email, 'pro').code).toBe(0);
    expect(admin('grant-admin', u.email).code).toBe(0);
    await t.systemPool.query(`UPDATE users SET deleting_at = now() WHERE id = $1`, [u.sub]);
    await t.systemPool.query('SELECT atelier_erase_account_rows($1, $2)', [u.sub, `deleted_${u.sub}`]);
    await t.systemPool.query('SELECT atelier_erase_account_user($1)', [u.sub]);
    for (const table of ['users', 'admins', 'plan_changes']) {
      const col = table === 'users' ? 'id' : 'user_id';
      const r = await t.adminPool.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${col} = $1`, [u.sub]);
      expect(r.rows[0].n, table).toBe(0);
    }
  });
});
