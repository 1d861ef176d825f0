/**
 * Quota reservation and refund. The reservation is ONE statement: an upsert of the user's row
 * for the current period that only increments while `used + n <= limit`. Concurrent requests
 * serialise on that row (ON CONFLICT DO UPDATE re-checks the condition against the latest
 * version), so exactly as many succeed as fit. The period is computed from the clock inside the
 * statement — a new month is simply a new row, so no cron job resets anything.
 */
import { PLANS, type PlanId } from '@atelier/common';
import type { Queryable } from '../db/pool.ts';
import { lockUser } from '../db/tx.ts';

export interface UsageRow {
  used: number;
  limit: number;
  periodStart: Date;
  periodEnd: Date;
  plan: PlanId;
}

// $1 user, $2 clock override (null = now()), $3 free limit, $4 pro limit.
const PERIOD_CTE = `
  ctx AS (SELECT COALESCE($2::timestamptz, now()) AS at),
  p AS (
    SELECT ep.plan,
      (ep.plan = 'pro' AND ep.current_period_start IS NOT NULL AND ep.current_period_start <= ctx.at
        AND ep.current_period_end > ctx.at) AS billing_period,
      ep.current_period_start, ep.current_period_end, ctx.at,
      CASE WHEN ep.plan = 'pro' THEN $4::int ELSE $3::int END AS lim
    FROM effective_plans ep, ctx WHERE ep.user_id = $1),
  period AS (
    SELECT plan, lim,
      CASE WHEN billing_period THEN current_period_start ELSE date_trunc('month', at, 'UTC') END AS period_start,
      CASE WHEN billing_period THEN current_period_end ELSE date_trunc('month', at, 'UTC') + interval '1 month' END AS period_end
    FROM p)`;

const RESERVE_SQL = `WITH ${PERIOD_CTE}
  INSERT INTO usage_periods AS u (user_id, period_start, period_end, plan, used, "limit")
  SELECT $1, period_start, period_end, plan, $5::int, lim FROM period WHERE $5::int <= lim
  ON CONFLICT (user_id, period_start) DO UPDATE
    SET used = u.used + EXCLUDED.used, "limit" = EXCLUDED."limit", plan = EXCLUDED.plan,
        period_end = EXCLUDED.period_end, updated_at = now()
    WHERE u.used + EXCLUDED.used <= EXCLUDED."limit"
  RETURNING used, "limit", period_start AS "periodStart", period_end AS "periodEnd", plan`;

const CURRENT_SQL = `WITH ${PERIOD_CTE}
  SELECT COALESCE(u.used, 0) AS used, period.lim AS "limit", period.period_start AS "periodStart",
         period.period_end AS "periodEnd", period.plan
  FROM period LEFT JOIN usage_periods u ON u.user_id = $1 AND u.period_start = period.period_start`;

const limits = () => [PLANS.free.monthlyImages, PLANS.pro.monthlyImages];

/** Reserves `n` images; null when they do not fit (→ QUOTA_EXCEEDED). */
export async function reserve(
  tx: Queryable,
  userId: string,
  n: number,
  at: Date | null = null,
): Promise<UsageRow | null> {
  const r = await tx.query<UsageRow>(RESERVE_SQL, [userId, at, ...limits(), n]);
  return r.rows[0] ?? null;
}

/** The user's usage in the period containing `at` (zero when nothing was reserved yet). */
export async function currentUsage(q: Queryable, userId: string, at: Date | null = null): Promise<UsageRow> {
  const r = await q.query<UsageRow>(CURRENT_SQL, [userId, at, ...limits()]);
  const row = r.rows[0];
  if (!row) throw new Error(`no user ${userId}`);
  return row;
}

/**
 * Gives back a generation's images that were not delivered — at most once: the ledger's unique
 * (generation_id, kind) makes a second refund insert nothing, and the usage update only runs for
 * the inserted row. A delivered image (a row in `images` for this generation, deleted or not)
 * stays charged; the rest go back.
 *
 * The refund goes to the period that holds the charge now (`generations.period_start`, which a
 * plan change moves along with the carried count), and the ledger records exactly what `used`
 * lost — never more than it holds — so every period's ledger sums to its `used`.
 * Returns the updated usage, or null if it was already refunded.
 */
export async function refundGeneration(q: Queryable, generationId: string, note: string): Promise<UsageRow | null> {
  const r = await q.query<UsageRow>(
    `WITH g AS (
       SELECT user_id, period_start,
              GREATEST(image_count - (SELECT count(*)::int FROM images i WHERE i.generation_id = $1), 0) AS n
         FROM generations WHERE id = $1),
     u AS (
       SELECT up.used FROM usage_periods up JOIN g ON up.user_id = g.user_id AND up.period_start = g.period_start
        FOR UPDATE OF up),
     l AS (
       INSERT INTO usage_ledger (user_id, generation_id, kind, amount, period_start, note)
       SELECT g.user_id, $1, 'refund', -LEAST(g.n, COALESCE((SELECT used FROM u), 0)), g.period_start, $2 FROM g
       ON CONFLICT (generation_id, kind) WHERE generation_id IS NOT NULL DO NOTHING
       RETURNING user_id, amount, period_start)
     UPDATE usage_periods u SET used = u.used + l.amount, updated_at = now()
     FROM l WHERE u.user_id = l.user_id AND u.period_start = l.period_start
     RETURNING u.used, u."limit", u.period_start AS "periodStart", u.period_end AS "periodEnd", u.plan`,
    [generationId, note],
  );
  return r.rows[0] ?? null;
}

/**
 * Operator adjustment (admin CLI): sets `used` for the current period and records the difference.
 * The user, then the row, are locked before it is read, so a reservation or refund running at the same moment
 * cannot slip between the read and the write: the ledger still sums to `used`.
 */
export async function setUsage(q: Queryable, userId: string, used: number, at: Date | null = null): Promise<UsageRow> {
  // The per-user lock first, in the same order as a submission: no deadlock between the two.
  await lockUser(q, userId);
  const cur = await currentUsage(q, userId, at);
  await q.query(
    `INSERT INTO usage_periods (user_id, period_start, period_end, plan, used, "limit")
     VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (user_id, period_start) DO NOTHING`,
    [userId, cur.periodStart, cur.periodEnd, cur.plan, cur.limit],
  );
  const locked = await q.query<{ used: number }>(
    'SELECT used FROM usage_periods WHERE user_id = $1 AND period_start = $2 FOR UPDATE',
    [userId, cur.periodStart],
  );
  const before = locked.rows[0]!.used;
  await q.query('UPDATE usage_periods SET used = $3, updated_at = now() WHERE user_id = $1 AND period_start = $2', [
    userId,
    cur.periodStart,
    used,
  ]);
  await q.query(
    `INSERT INTO usage_ledger (user_id, kind, amount, period_start, note) VALUES ($1, 'adjust', $2, $3, 'set-usage')`,
    [userId, used - before, cur.periodStart],
  );
  return { ...cur, used };
}

/**
 * Email + current usage in one round trip (GET /v1/me): the atelier_user_usage function sets the
 * user for RLS and runs the period query; a named statement, so it is planned once per connection.
 * Use outside a transaction (the setting lasts for this statement's implicit transaction).
 */
export async function userUsage(
  q: Queryable,
  userId: string,
  at: Date | null = null,
): Promise<(UsageRow & { email: string | null }) | null> {
  const r = await (
    q as unknown as { query: (c: object) => Promise<{ rows: (UsageRow & { email: string | null })[] }> }
  ).query({
    name: 'atelier_user_usage',
    text: `SELECT email, used, "limit", period_start AS "periodStart", period_end AS "periodEnd", plan
           FROM atelier_user_usage($1, $2, $3, $4)`,
    values: [userId, at, ...limits()],
  });
  return r.rows[0] ?? null;
}

export type UserUsage = UsageRow & { email: string | null };
export type UsageReader = (userId: string, at?: Date | null) => Promise<UserUsage | null>;

/**
 * `userUsage` for many concurrent requests in one round trip: lookups that arrive in the same
 * event-loop turn are sent together as one statement that calls `atelier_user_usage` once per
 * user (LATERAL, in order). Each call sets `app.user_id` to its own user before it reads, so RLS
 * applies to every user's read exactly as in a lone call; the setting is transaction-local and the
 * statement is its own transaction, so nothing carries over on the pooled connection. Rows come
 * back tagged with their position and user id, and a row is only handed to the request for that
 * same user. Nothing is cached: every request reads the current usage.
 */
export function createUsageReader(q: Queryable, opts: { maxBatch?: number } = {}): UsageReader {
  const maxBatch = opts.maxBatch ?? 64;
  interface Pending {
    userId: string;
    resolve: (row: UserUsage | null) => void;
    reject: (e: unknown) => void;
  }
  // One queue per clock value (tests override the clock; the API passes null = now()).
  const queues = new Map<number | null, Pending[]>();
  let scheduled = false;

  async function send(at: Date | null, batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      const p = batch[0]!;
      await userUsage(q, p.userId, at).then(p.resolve, p.reject);
      return;
    }
    try {
      const r = await (
        q as unknown as { query: (c: object) => Promise<{ rows: (UserUsage & { n: number; id: string })[] }> }
      ).query({
        name: 'atelier_user_usage_batch',
        text: `SELECT u.n::int AS n, u.id, r.email, r.used, r."limit", r.period_start AS "periodStart",
                      r.period_end AS "periodEnd", r.plan
               FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)
               CROSS JOIN LATERAL atelier_user_usage(u.id, $2, $3, $4) r
               ORDER BY u.n`,
        values: [batch.map((p) => p.userId), at, ...limits()],
      });
      const byIndex = new Map<number, UserUsage & { n: number; id: string }>();
      for (const row of r.rows) byIndex.set(row.n, row);
      batch.forEach((p, i) => {
        const row = byIndex.get(i + 1);
        if (!row) return p.resolve(null);
        if (row.id !== p.userId) return p.reject(new Error('usage batch returned a row for another user'));
        const { n: _n, id: _id, ...usage } = row;
        p.resolve(usage);
      });
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }

  function flush(): void {
    scheduled = false;
    for (const [atMs, pending] of queues) {
      const at = atMs === null ? null : new Date(atMs);
      for (let i = 0; i < pending.length; i += maxBatch) void send(at, pending.slice(i, i + maxBatch));
    }
    queues.clear();
  }

  return (userId, at = null) =>
    new Promise<UserUsage | null>((resolve, reject) => {
      const key = at === null ? null : at.getTime();
      let list = queues.get(key);
      if (!list) queues.set(key, (list = []));
      list.push({ userId, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
