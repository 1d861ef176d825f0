/**
 * Billing's SQL: subscriptions, Stripe event dedupe and the usage moves a plan change makes.
 *
 * User-scoped reads and writes take the user id first and run inside `withUserTx` on the app pool
 * (RLS). The webhook and the review sweep act for no user yet (they find the user from Stripe's
 * ids), so their functions run inside `withSystemTx` on the system pool.
 */
import type { PlanId } from '@atelier/common/plans';
import type { Queryable } from '../db/pool.ts';
import type { BillingEvent } from './billing.ts';

export interface SubscriptionRow {
  user_id: string;
  plan: PlanId;
  status: string;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
  current_period_start: Date | null;
  current_period_end: Date | null;
  past_due_since: Date | null;
}

export interface BillingStateRow {
  plan: PlanId;
  status: string | null;
  cancel_at_period_end: boolean | null;
  current_period_end: Date | null;
  grace_until: Date | null;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
}

// ── user-scoped (withUserTx, app pool) ───────────────────────────────────────────────────────

/** The plan in force and the Stripe customer (if any): what Checkout needs. */
export async function checkoutState(
  tx: Queryable,
  userId: string,
): Promise<{ plan: PlanId; stripe_customer_id: string | null; email: string | null } | null> {
  const r = await tx.query<{ plan: PlanId; stripe_customer_id: string | null; email: string | null }>(
    `SELECT e.plan, s.stripe_customer_id, u.email
       FROM effective_plans e JOIN users u ON u.id = e.user_id
       LEFT JOIN subscriptions s ON s.user_id = e.user_id
      WHERE e.user_id = $1`,
    [userId],
  );
  return r.rows[0] ?? null;
}

/** Remembers the Stripe customer made for this user (keeps one already stored). */
export async function saveCustomerId(tx: Queryable, userId: string, customerId: string): Promise<void> {
  await tx.query(
    `INSERT INTO subscriptions (user_id, stripe_customer_id) VALUES ($1, $2)
     ON CONFLICT (user_id) DO UPDATE
       SET stripe_customer_id = COALESCE(subscriptions.stripe_customer_id, EXCLUDED.stripe_customer_id),
           updated_at = now()`,
    [userId, customerId],
  );
}

/** The user's Stripe customer id, or null. Also used by the system pool (email sync). */
export async function customerIdOf(q: Queryable, userId: string): Promise<string | null> {
  const r = await q.query<{ c: string | null }>(
    'SELECT stripe_customer_id AS c FROM subscriptions WHERE user_id = $1',
    [userId],
  );
  return r.rows[0]?.c ?? null;
}

/** GET /v1/billing/subscription: the plan in force and the subscription's state. */
export async function billingState(tx: Queryable, userId: string): Promise<BillingStateRow | null> {
  const r = await tx.query<BillingStateRow>(
    `SELECT e.plan, s.status, s.cancel_at_period_end, s.current_period_end, s.grace_until,
            s.stripe_customer_id, s.stripe_subscription_id
       FROM effective_plans e LEFT JOIN subscriptions s ON s.user_id = e.user_id
      WHERE e.user_id = $1`,
    [userId],
  );
  return r.rows[0] ?? null;
}

// ── system (withSystemTx, system pool): webhooks and the review sweep ─────────────────────────

/** Records a delivery; false when the event id was seen before (concurrent duplicates wait on the key). */
export async function recordStripeEvent(tx: Queryable, event: BillingEvent, handled: boolean): Promise<boolean> {
  const fresh = await tx.query(
    `INSERT INTO stripe_events (id, type, stripe_created_at, livemode, subscription_id, outcome)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id`,
    [event.id, event.type, event.created, event.livemode, event.subscriptionId, handled ? 'received' : 'ignored'],
  );
  return (fresh.rowCount ?? 0) > 0;
}

export async function setStripeEventOutcome(
  tx: Queryable,
  eventId: string,
  outcome: string,
  applied?: { plan: PlanId; userId: string },
): Promise<void> {
  if (!applied) {
    await tx.query('UPDATE stripe_events SET outcome = $2 WHERE id = $1', [eventId, outcome]);
    return;
  }
  await tx.query('UPDATE stripe_events SET outcome = $2, plan = $3, user_id = $4 WHERE id = $1', [
    eventId,
    outcome,
    applied.plan,
    applied.userId,
  ]);
}

/** Users whose plan may change by the clock alone (grace ran out, scheduled cancellation). */
export async function dueForReview(q: Queryable, now: Date, limit: number): Promise<string[]> {
  const r = await q.query<{ user_id: string }>(
    `SELECT user_id FROM subscriptions
      WHERE review_at IS NOT NULL AND review_at <= $1 AND stripe_subscription_id IS NOT NULL
      ORDER BY review_at LIMIT $2`,
    [now, limit],
  );
  return r.rows.map((row) => row.user_id);
}

/** The subscription row, locked, by user or by Stripe customer. */
export async function lockSubscription(
  tx: Queryable,
  by: { userId: string } | { customerId: string },
): Promise<SubscriptionRow | null> {
  const [column, value] = 'userId' in by ? ['user_id', by.userId] : ['stripe_customer_id', by.customerId];
  const r = await tx.query<SubscriptionRow>(
    `SELECT user_id, plan, status, stripe_customer_id, stripe_subscription_id,
            current_period_start, current_period_end, past_due_since
       FROM subscriptions WHERE ${column} = $1 FOR UPDATE`,
    [value],
  );
  return r.rows[0] ?? null;
}

/**
 * Attaches a Stripe customer to an existing user that has none yet (a completed Checkout whose
 * customer was never stored). False when the user does not exist or already has a customer.
 */
export async function attachCustomer(tx: Queryable, userId: string, customerId: string): Promise<boolean> {
  const user = await tx.query('SELECT 1 FROM users WHERE id = $1', [userId]);
  if (user.rowCount === 0) return false;
  const attached = await tx.query(
    `INSERT INTO subscriptions (user_id, stripe_customer_id) VALUES ($1, $2)
     ON CONFLICT (user_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id, updated_at = now()
       WHERE subscriptions.stripe_customer_id IS NULL
     RETURNING user_id`,
    [userId, customerId],
  );
  return (attached.rowCount ?? 0) > 0;
}

export interface SubscriptionWrite {
  plan: PlanId;
  status: string;
  subscriptionId: string;
  customerId: string;
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
  graceUntil: Date | null;
  pastDueSince: Date | null;
  cancelAtPeriodEnd: boolean;
  cancelAt: Date | null;
  priceId: string | null;
  reviewAt: Date | null;
  syncedAt: Date;
}

export async function writeSubscription(tx: Queryable, userId: string, s: SubscriptionWrite): Promise<void> {
  await tx.query(
    `UPDATE subscriptions SET
       plan = $2, status = $3, stripe_subscription_id = $4, stripe_customer_id = COALESCE(stripe_customer_id, $5),
       current_period_start = $6, current_period_end = $7, grace_until = $8, past_due_since = $9,
       cancel_at_period_end = $10, cancel_at = $11, stripe_price_id = $12, review_at = $13,
       stripe_synced_at = $14, updated_at = now()
     WHERE user_id = $1`,
    [
      userId,
      s.plan,
      s.status,
      s.subscriptionId,
      s.customerId,
      s.currentPeriodStart,
      s.currentPeriodEnd,
      s.graceUntil,
      s.pastDueSince,
      s.cancelAtPeriodEnd,
      s.cancelAt,
      s.priceId,
      s.reviewAt,
      s.syncedAt,
    ],
  );
}

// ── usage moves on a plan change (inside the transaction that applies the plan) ──────────────

export interface PeriodRow {
  period_start: Date;
  period_end: Date;
  used: number;
  limit: number;
}

/** The usage period containing `now`, locked. */
export async function lockPeriodAt(tx: Queryable, userId: string, now: Date): Promise<PeriodRow | null> {
  const r = await tx.query<PeriodRow>(
    `SELECT period_start, period_end, used, "limit" FROM usage_periods
      WHERE user_id = $1 AND period_start <= $2 AND period_end > $2
      ORDER BY period_start DESC LIMIT 1 FOR UPDATE`,
    [userId, now],
  );
  return r.rows[0] ?? null;
}

/** `used` of the period starting at `periodStart`, locked; 0 when it has no row yet. */
export async function lockUsedOf(tx: Queryable, userId: string, periodStart: Date): Promise<number> {
  const r = await tx.query<{ used: number }>(
    'SELECT used FROM usage_periods WHERE user_id = $1 AND period_start = $2 FOR UPDATE',
    [userId, periodStart],
  );
  return r.rows[0]?.used ?? 0;
}

export async function closePeriod(tx: Queryable, userId: string, periodStart: Date, at: Date): Promise<void> {
  await tx.query(
    'UPDATE usage_periods SET period_end = $3, updated_at = now() WHERE user_id = $1 AND period_start = $2',
    [userId, periodStart, at],
  );
}

export async function putPeriod(
  tx: Queryable,
  userId: string,
  p: { periodStart: Date; periodEnd: Date; plan: PlanId; used: number; limit: number },
): Promise<void> {
  await tx.query(
    `INSERT INTO usage_periods (user_id, period_start, period_end, plan, used, "limit")
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (user_id, period_start) DO UPDATE
       SET period_end = EXCLUDED.period_end, plan = EXCLUDED.plan, used = EXCLUDED.used,
           "limit" = EXCLUDED."limit", updated_at = now()`,
    [userId, p.periodStart, p.periodEnd, p.plan, p.used, p.limit],
  );
}

export async function appendAdjustment(
  tx: Queryable,
  userId: string,
  amount: number,
  periodStart: Date,
  note: string,
): Promise<void> {
  await tx.query(
    `INSERT INTO usage_ledger (user_id, kind, amount, period_start, note) VALUES ($1, 'adjust', $2, $3, $4)`,
    [userId, amount, periodStart, note],
  );
}

/** Generations still in flight follow their charge into the new period (refunds land where it is counted). */
export async function moveInFlightGenerations(tx: Queryable, userId: string, from: Date, to: Date): Promise<void> {
  await tx.query(
    `UPDATE generations SET period_start = $3, updated_at = now()
      WHERE user_id = $1 AND period_start = $2 AND status IN ('queued', 'running')`,
    [userId, from, to],
  );
}
