/** Operator commands (admin CLI and tests). They act for no user: run them on the system pool. */
import { AppError, PLAN_IDS, type PlanId } from '@atelier/common';
import type { Pool } from '../db/pool.ts';
import { withSystemTx } from '../db/tx.ts';
import { publishEvent } from '../events/publish.ts';
import { usageEvent } from '../generations/repository.ts';
import { currentUsage, setUsage, type UsageRow } from '../quota/usage.ts';

async function userIdByEmail(pool: Pool, email: string): Promise<string> {
  const r = await pool.query<{ id: string }>('SELECT id FROM users WHERE lower(email) = lower($1)', [email]);
  if (!r.rows[0])
    throw new AppError('NOT_FOUND', `No user with email ${email} (users appear after their first API request).`);
  if (r.rows.length > 1) throw new AppError('CONFLICT', `Several users have email ${email}; use their ids.`);
  return r.rows[0].id;
}

const show = (email: string, u: UsageRow) =>
  `${email}: plan ${u.plan}, ${u.used}/${u.limit} images, period ${u.periodStart.toISOString()} → ${u.periodEnd.toISOString()}`;

export async function setPlan(pool: Pool, email: string, plan: string): Promise<string> {
  if (!PLAN_IDS.includes(plan as PlanId))
    throw new AppError('VALIDATION_FAILED', `plan must be one of ${PLAN_IDS.join(', ')}`);
  const userId = await userIdByEmail(pool, email);
  return withSystemTx(pool, async (tx) => {
    await tx.query(
      `INSERT INTO subscriptions (user_id, plan, status) VALUES ($1, $2, 'active')
       ON CONFLICT (user_id) DO UPDATE SET plan = EXCLUDED.plan, status = 'active', updated_at = now()`,
      [userId, plan],
    );
    const usage = await currentUsage(tx, userId);
    await publishEvent(tx, userId, { type: 'plan.changed', plan: plan as PlanId });
    await publishEvent(tx, userId, usageEvent(usage));
    return show(email, usage);
  });
}

export async function usage(pool: Pool, email: string): Promise<string> {
  const userId = await userIdByEmail(pool, email);
  return show(email, await currentUsage(pool, userId));
}

export async function setUsageCommand(pool: Pool, email: string, n: string): Promise<string> {
  const used = Number(n);
  if (!Number.isInteger(used) || used < 0) throw new AppError('VALIDATION_FAILED', 'n must be a whole number ≥ 0');
  const userId = await userIdByEmail(pool, email);
  return withSystemTx(pool, async (tx) => {
    const u = await setUsage(tx, userId, used);
    await publishEvent(tx, userId, usageEvent(u));
    return show(email, u);
  });
}

export async function listUsers(pool: Pool): Promise<string> {
  const r = await pool.query<{ id: string; email: string | null; plan: string; created_at: Date }>(
    `SELECT u.id, u.email, ep.plan, u.created_at FROM users u JOIN effective_plans ep ON ep.user_id = u.id
     ORDER BY u.created_at`,
  );
  if (!r.rows.length) return 'no users yet';
  return r.rows.map((u) => `${u.email ?? '(no email)'}\t${u.plan}\t${u.id}\t${u.created_at.toISOString()}`).join('\n');
}
