/**
 * Usage a person can see (GET /v1/usage/daily) and the operator metrics (admin report,
 * GET /v1/admin/metrics). SQL lives here; the routes and the CLI only call these functions.
 *
 * Per-user reads run inside withUserTx (RLS): the ledger and generations they join are the
 * user's own. The operator metrics read every user's rows and so run on the system pool, but
 * return aggregates only — no user id or email leaves this module.
 */
import {
  AppError,
  MAX_USAGE_RANGE_DAYS,
  PLANS,
  type AdminMetrics,
  type PlanId,
  type UsageDaily,
  type UsageDailyQuery,
  type UsageDay,
} from '@atelier/common';
import type { Queryable } from '../db/pool.ts';
import { currentUsage } from '../quota/usage.ts';

const DAY_MS = 86_400_000;
const dayOf = (d: Date) => d.toISOString().slice(0, 10);
const dayStart = (day: string) => new Date(`${day}T00:00:00Z`);

/** Inclusive UTC day range, checked: from ≤ to, at most MAX_USAGE_RANGE_DAYS days. */
export function checkRange(from: string, to: string): { from: string; to: string; days: number } {
  const days = Math.round((dayStart(to).getTime() - dayStart(from).getTime()) / DAY_MS) + 1;
  if (days < 1)
    throw new AppError('USAGE_RANGE_INVALID', `from (${from}) is after to (${to})`, {
      details: { from, to },
    });
  if (days > MAX_USAGE_RANGE_DAYS)
    throw new AppError(
      'USAGE_RANGE_INVALID',
      `The range has ${days} days; ask for at most ${MAX_USAGE_RANGE_DAYS} at a time`,
      { details: { from, to, maxDays: MAX_USAGE_RANGE_DAYS } },
    );
  return { from, to, days };
}

interface PeriodRow {
  periodStart: Date;
  periodEnd: Date;
  plan: PlanId;
  used: number;
  limit: number;
}

/**
 * The period before the one starting at `currentStart`: the user's usage row that ends where the
 * current one begins (or overlaps the month before it, after a plan change moved the boundary),
 * else the empty calendar month before — a user who used nothing then still sees that period.
 */
async function previousPeriod(tx: Queryable, userId: string, currentStart: Date): Promise<PeriodRow> {
  const monthBefore = new Date(Date.UTC(currentStart.getUTCFullYear(), currentStart.getUTCMonth() - 1, 1));
  const r = await tx.query<PeriodRow>(
    `SELECT period_start AS "periodStart", period_end AS "periodEnd", plan, used, "limit"
       FROM usage_periods
      WHERE user_id = $1 AND period_start < $2 AND period_end > $3
      ORDER BY period_start DESC LIMIT 1`,
    [userId, currentStart, monthBefore],
  );
  return (
    r.rows[0] ?? {
      periodStart: monthBefore,
      periodEnd: currentStart,
      plan: 'free',
      used: 0,
      limit: PLANS.free.monthlyImages,
    }
  );
}

/**
 * Each ledger row falls on the UTC day its generation was submitted (so a refund nets against
 * the images it gives back, not the day the worker failed), split by the generation's source;
 * operator adjustments, which have no generation, fall on their own day as `adjusted`.
 */
const DAYS_SQL = `
  WITH rows AS (
    SELECT (COALESCE(g.created_at, l.created_at) AT TIME ZONE 'UTC')::date AS day,
           l.kind, l.amount, COALESCE(g.source, 'desktop') AS source
      FROM usage_ledger l LEFT JOIN generations g ON g.id = l.generation_id
     WHERE l.user_id = $1
       AND COALESCE(g.created_at, l.created_at) >= $2::date::timestamp AT TIME ZONE 'UTC'
       AND COALESCE(g.created_at, l.created_at) < ($3::date + 1)::timestamp AT TIME ZONE 'UTC')
  SELECT to_char(d, 'YYYY-MM-DD') AS date,
         COALESCE(sum(r.amount) FILTER (WHERE r.kind <> 'adjust' AND r.source = 'desktop'), 0)::int AS desktop,
         COALESCE(sum(r.amount) FILTER (WHERE r.kind <> 'adjust' AND r.source = 'api'), 0)::int AS api,
         COALESCE(sum(r.amount) FILTER (WHERE r.kind = 'adjust'), 0)::int AS adjusted
    FROM generate_series($2::date, $3::date, interval '1 day') AS d
    LEFT JOIN rows r ON r.day = d::date
   GROUP BY d ORDER BY d`;

/** The chart's data for one user. Run inside withUserTx(pool, userId). */
export async function dailyUsage(
  tx: Queryable,
  userId: string,
  query: UsageDailyQuery,
  at: Date | null = null,
): Promise<UsageDaily> {
  const cur = await currentUsage(tx, userId, at);
  const prev = await previousPeriod(tx, userId, cur.periodStart);
  const range = checkRange(
    query.from ?? dayOf(prev.periodStart),
    query.to ?? dayOf(new Date(cur.periodEnd.getTime() - 1)),
  );
  const days = await tx.query<UsageDay>(DAYS_SQL, [userId, range.from, range.to]);
  const summary = (p: PeriodRow) => ({
    periodStart: p.periodStart.toISOString(),
    periodEnd: p.periodEnd.toISOString(),
    plan: p.plan,
    used: p.used,
    limit: p.limit,
  });
  return {
    from: range.from,
    to: range.to,
    current: { ...summary(cur), left: Math.max(cur.limit - cur.used, 0) },
    previous: summary(prev),
    days: days.rows,
  };
}

/** Whether the user is an operator (a row in `admins`, written only by the admin CLI). */
export async function isAdmin(tx: Queryable, userId: string): Promise<boolean> {
  const r = await tx.query('SELECT 1 FROM admins WHERE user_id = $1', [userId]);
  return r.rowCount === 1;
}

export async function grantAdmin(q: Queryable, userId: string, grantedBy: string): Promise<boolean> {
  const r = await q.query('INSERT INTO admins (user_id, granted_by) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING', [
    userId,
    grantedBy,
  ]);
  return r.rowCount === 1;
}

export async function revokeAdmin(q: Queryable, userId: string): Promise<boolean> {
  const r = await q.query('DELETE FROM admins WHERE user_id = $1', [userId]);
  return r.rowCount === 1;
}

/**
 * Users who can be counted: not being deleted, and not the anonymous rows account deletion
 * leaves behind for accounting (they carry deleting_at too).
 */
const LIVE_USERS = `SELECT id, created_at FROM users WHERE deleting_at IS NULL`;

// $1 from (date), $2 to (date, inclusive); t0/t1 the half-open UTC interval they span.
const METRICS_SQL = `
  WITH b AS (SELECT $1::date::timestamp AT TIME ZONE 'UTC' AS t0, ($2::date + 1)::timestamp AT TIME ZONE 'UTC' AS t1),
  -- One pass per figure over the range (grouped by day), not one query per day.
  act AS (
    SELECT (g.created_at AT TIME ZONE 'UTC')::date AS day, count(DISTINCT g.user_id)::int AS n
      FROM generations g, b WHERE g.created_at >= b.t0 AND g.created_at < b.t1 GROUP BY 1),
  img AS (
    SELECT (g.finished_at AT TIME ZONE 'UTC')::date AS day, sum(g.image_count)::int AS n
      FROM generations g, b
     WHERE g.status = 'succeeded' AND g.finished_at >= b.t0 AND g.finished_at < b.t1 GROUP BY 1),
  days AS (
    SELECT d::date AS day, COALESCE(act.n, 0) AS active, COALESCE(img.n, 0) AS images
      FROM generate_series($1::date, $2::date, interval '1 day') AS d
      LEFT JOIN act ON act.day = d::date LEFT JOIN img ON img.day = d::date),
  live AS (${LIVE_USERS}),
  -- Pro at a moment = the user's latest plan change before it went to Pro.
  pro_at_start AS (
    SELECT DISTINCT ON (pc.user_id) pc.user_id, pc.to_pro FROM plan_changes pc, b
     WHERE pc.changed_at < b.t0 ORDER BY pc.user_id, pc.changed_at DESC, pc.id DESC),
  free_base AS (
    SELECT l.id FROM live l, b
     WHERE l.created_at < b.t1
       AND NOT EXISTS (SELECT 1 FROM pro_at_start p WHERE p.user_id = l.id AND p.to_pro)),
  converted AS (
    SELECT DISTINCT f.id FROM free_base f JOIN plan_changes pc ON pc.user_id = f.id, b
     WHERE pc.to_pro AND pc.changed_at >= b.t0 AND pc.changed_at < b.t1),
  waits AS (
    SELECT extract(epoch FROM g.started_at - g.created_at) * 1000 AS ms FROM generations g, b
     WHERE g.created_at >= b.t0 AND g.created_at < b.t1 AND g.started_at IS NOT NULL),
  finished AS (
    SELECT g.status FROM generations g, b
     WHERE g.finished_at >= b.t0 AND g.finished_at < b.t1 AND g.status IN ('succeeded', 'failed'))
  SELECT
    (SELECT json_agg(json_build_object('date', to_char(day, 'YYYY-MM-DD'), 'activeUsers', active, 'images', images)
                     ORDER BY day) FROM days) AS days,
    (SELECT count(DISTINCT g.user_id) FROM generations g, b WHERE g.created_at >= b.t0 AND g.created_at < b.t1)::int
      AS active_users,
    (SELECT COALESCE(sum(images), 0) FROM days)::int AS images,
    (SELECT count(*) FROM live l JOIN effective_plans ep ON ep.user_id = l.id, b
      WHERE l.created_at < b.t1 AND ep.plan = 'free')::int AS free_now,
    (SELECT count(*) FROM live l JOIN effective_plans ep ON ep.user_id = l.id, b
      WHERE l.created_at < b.t1 AND ep.plan = 'pro')::int AS pro_now,
    (SELECT count(*) FROM free_base)::int AS free_users,
    (SELECT count(*) FROM converted)::int AS converted,
    (SELECT count(*) FROM waits)::int AS wait_samples,
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM waits)::float8 AS p50,
    (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) FROM waits)::float8 AS p95,
    (SELECT count(*) FROM finished)::int AS finished,
    (SELECT count(*) FILTER (WHERE status = 'failed') FROM finished)::int AS failed`;

interface MetricsRow {
  days: AdminMetrics['days'];
  active_users: number;
  images: number;
  free_now: number;
  pro_now: number;
  free_users: number;
  converted: number;
  wait_samples: number;
  p50: number | null;
  p95: number | null;
  finished: number;
  failed: number;
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

/** Operator figures for an inclusive UTC day range. Run on the system pool (every user's rows). */
export async function operatorMetrics(q: Queryable, from: string, to: string): Promise<AdminMetrics> {
  checkRange(from, to);
  const r = await q.query<MetricsRow>(METRICS_SQL, [from, to]);
  const m = r.rows[0]!;
  const ms = (v: number | null) => (v === null ? null : Math.round(v));
  return {
    from,
    to,
    days: m.days,
    activeUsers: m.active_users,
    images: m.images,
    planMix: { free: m.free_now, pro: m.pro_now },
    conversion: { freeUsers: m.free_users, converted: m.converted, rate: ratio(m.converted, m.free_users) },
    queueWait: { samples: m.wait_samples, p50Ms: ms(m.p50), p95Ms: ms(m.p95) },
    failures: { finished: m.finished, failed: m.failed, rate: ratio(m.failed, m.finished) },
  };
}
