/**
 * Billing use cases: start a Checkout, open the Customer Portal, take a Stripe webhook, and
 * re-check subscriptions whose plan changes by the clock alone (grace ends, scheduled cancellation).
 *
 * Who decides the plan: only Stripe's current view of the subscription, re-read under a row lock
 * in the transaction that applies it. A redirect back from Checkout changes nothing; a webhook body
 * is only a hint of which subscription to re-read, so events arriving late or out of order still
 * end in the state Stripe holds.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '@atelier/common/errors';
import type { CloudEvent, Usage } from '@atelier/common/api';
import type { PlanId } from '@atelier/common/plans';
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';
import { lockUser, withSystemTx, withUserTx } from '../db/tx.ts';
import * as repo from './repository.ts';
import type { BillingStateRow, SubscriptionRow } from './repository.ts';
import { HANDLED_EVENT_TYPES } from './billing.ts';
import type { Billing, BillingEvent } from './billing.ts';
import { judgeSubscription, usageAfterPlanChange } from './plan-rules.ts';
import type { SubscriptionSnapshot, SubscriptionVerdict, UsageWindow } from './plan-rules.ts';

export interface BillingLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface BillingServiceDeps {
  billing: Billing;
  /** The API pool (role atelier_app): user-scoped reads and writes go through RLS. */
  appPool: Pool;
  /** The system pool (role atelier_system, BYPASSRLS): webhooks and the sweeper. */
  systemPool: Pool;
  /**
   * Sends an event on the user's socket, inside the transaction that made the change
   * (events/publish.ts: NOTIFY is delivered on commit, never for a rollback).
   */
  publish: (q: Queryable, userId: string, event: CloudEvent) => Promise<void>;
  clock?: () => Date;
  /** Unit: days a past_due subscription keeps Pro. */
  graceDays: number;
  proPriceId: string;
  /** The API's public base URL (https in production): Checkout returns to a page under it. */
  publicApiUrl: string;
  log: BillingLogger;
}

export type WebhookOutcome = 'applied' | 'unchanged' | 'ignored' | 'unknown_customer' | 'duplicate';

export const RETURN_STATUSES = ['success', 'cancel', 'portal'] as const;
export type ReturnStatus = (typeof RETURN_STATUSES)[number];

/** What GET /v1/billing/subscription answers. */
export interface BillingStateView {
  plan: PlanId;
  status: string | null;
  cancelAtPeriodEnd: boolean;
  currentPeriodEnd: string | null;
  graceUntil: string | null;
  hasCustomer: boolean;
}

export function toBillingStateView(row: BillingStateRow | null): BillingStateView {
  return {
    plan: row?.plan ?? 'free',
    // A row made only to remember the customer (checkout started, never paid) has no status.
    status: row?.stripe_subscription_id || row?.plan === 'pro' ? (row?.status ?? null) : null,
    cancelAtPeriodEnd: row?.cancel_at_period_end ?? false,
    currentPeriodEnd: row?.current_period_end?.toISOString() ?? null,
    graceUntil: row?.grace_until?.toISOString() ?? null,
    hasCustomer: Boolean(row?.stripe_customer_id),
  };
}

export function createBillingService(deps: BillingServiceDeps) {
  const clock = deps.clock ?? (() => new Date());
  const base = deps.publicApiUrl.replace(/\/+$/, '');
  const returnUrl = (status: ReturnStatus) => `${base}/v1/billing/return?status=${status}`;

  /**
   * Starts an upgrade: creates or reuses the user's Stripe customer, then a subscription-mode
   * Checkout Session. The customer id is stored only once the session exists, so a failure
   * anywhere leaves the database as it was (a retry reuses the same customer: its creation is
   * idempotent per user).
   */
  async function startCheckout(
    user: { id: string; email?: string | null },
    opts: { idempotencyKey?: string } = {},
  ): Promise<{ url: string }> {
    const current = await withUserTx(deps.appPool, user.id, (tx) => repo.checkoutState(tx, user.id));
    if (!current) throw new AppError('AUTH_REQUIRED', 'no user row for the verified token');
    if (current.plan === 'pro') throw new AppError('PLAN_ALREADY_ACTIVE', 'user already has pro');

    // The account's verified email (stored by the provisioner) unless the caller names one.
    const email = user.email === undefined ? current.email : user.email;
    const customerId =
      current.stripe_customer_id ?? (await deps.billing.createCustomer({ userId: user.id, email })).customerId;
    const session = await deps.billing.createCheckoutSession({
      customerId,
      userId: user.id,
      successUrl: returnUrl('success'),
      cancelUrl: returnUrl('cancel'),
      idempotencyKey: `atelier-checkout-${user.id}-${opts.idempotencyKey ?? randomUUID()}`,
    });
    if (!current.stripe_customer_id)
      await withUserTx(deps.appPool, user.id, (tx) => repo.saveCustomerId(tx, user.id, customerId));
    deps.log.info({ userId: user.id, checkoutSession: session.id }, 'billing: checkout started');
    return { url: session.url };
  }

  /**
   * The account's verified email changed: the Stripe customer (if any) gets it too, so receipts
   * follow the address the user proved they own. Failures are logged; the next change retries.
   */
  async function syncCustomerEmail(userId: string, email: string): Promise<void> {
    const customerId = await repo.customerIdOf(deps.systemPool, userId);
    if (!customerId) return;
    try {
      await deps.billing.updateCustomerEmail(customerId, email);
    } catch (err) {
      deps.log.warn({ err, userId }, 'billing: could not update the customer email');
    }
  }

  /** A Customer Portal session for the user's own customer; none yet → BILLING_NO_CUSTOMER. */
  async function openPortal(userId: string): Promise<{ url: string }> {
    const customerId = await withUserTx(deps.appPool, userId, (tx) => repo.customerIdOf(tx, userId));
    if (!customerId) throw new AppError('BILLING_NO_CUSTOMER', 'no stripe customer for user');
    return deps.billing.createPortalSession({ customerId, returnUrl: returnUrl('portal') });
  }

  /**
   * Takes one webhook delivery. Throws WEBHOOK_SIGNATURE_INVALID (400, nothing changed) for a bad
   * or stale signature, BILLING_UNAVAILABLE (502: Stripe redelivers) when the subscription cannot
   * be re-read; in both cases the event id is not recorded.
   */
  async function handleWebhook(rawBody: Buffer, signature: string | undefined): Promise<WebhookOutcome> {
    const verified = deps.billing.verifyWebhook(rawBody, signature, clock());
    if (!verified.ok) throw verified.error;
    const event = verified.value;
    const handled = (HANDLED_EVENT_TYPES as readonly string[]).includes(event.type) && event.subscriptionId !== null;

    const outcome = await withSystemTx(deps.systemPool, async (tx): Promise<WebhookOutcome> => {
      // Concurrent duplicates wait here on the key; the loser sees no row and does nothing.
      if (!(await repo.recordStripeEvent(tx, event, handled))) return 'duplicate';
      if (!handled) return 'ignored';

      const row = await lockRowForEvent(tx, event);
      if (!row) {
        await repo.setStripeEventOutcome(tx, event.id, 'unknown_customer');
        deps.log.warn(
          { eventId: event.id, type: event.type, customer: event.customerId },
          'billing: webhook for a customer no user owns',
        );
        return 'unknown_customer';
      }
      const result = await resyncLocked(
        tx,
        row,
        event.subscriptionId!,
        event.created,
        `stripe ${event.type} ${event.id}`,
      );
      await repo.setStripeEventOutcome(tx, event.id, result.change ? 'applied' : 'unchanged', {
        plan: result.plan,
        userId: row.user_id,
      });
      return result.change ? 'applied' : 'unchanged';
    });
    deps.log.info({ eventId: event.id, type: event.type, outcome }, 'billing: webhook');
    return outcome;
  }

  /**
   * Re-reads the subscriptions whose plan may have changed by the clock alone (a grace period
   * ran out, a scheduled cancellation took effect) and applies the result. Returns how many
   * users' plans or usage changed. One user's failure does not stop the others.
   */
  async function reviewDue(limit = 100): Promise<number> {
    const now = clock();
    const due = await repo.dueForReview(deps.systemPool, now, limit);
    let changed = 0;
    for (const userId of due) {
      try {
        const change = await withSystemTx(deps.systemPool, async (tx) => {
          const row = await repo.lockSubscription(tx, { userId });
          if (!row?.stripe_subscription_id) return null;
          return (await resyncLocked(tx, row, row.stripe_subscription_id, now, 'billing review')).change;
        });
        if (change) changed += 1;
      } catch (error) {
        deps.log.error({ err: error, userId }, 'billing: review failed; retried on the next sweep');
      }
    }
    return changed;
  }

  /**
   * The user an event belongs to, its subscription row locked. Found by the Stripe customer we
   * stored at checkout; a completed Checkout whose customer is not stored yet (the API stopped
   * between Stripe's answer and our write) is attached through the client_reference_id we set.
   */
  async function lockRowForEvent(tx: PoolClient, event: BillingEvent): Promise<SubscriptionRow | null> {
    if (event.customerId) {
      const row = await repo.lockSubscription(tx, { customerId: event.customerId });
      if (row) return row;
    }
    if (event.type !== 'checkout.session.completed' || !event.clientReferenceId || !event.customerId) return null;
    if (!(await repo.attachCustomer(tx, event.clientReferenceId, event.customerId))) return null;
    return repo.lockSubscription(tx, { userId: event.clientReferenceId });
  }

  /**
   * Re-reads the subscription from Stripe (inside the locked transaction, so the last writer
   * has the freshest read), decides, writes the row, moves usage, appends to the ledger.
   */
  async function resyncLocked(
    tx: PoolClient,
    row: SubscriptionRow,
    subscriptionId: string,
    observedAt: Date,
    why: string,
  ): Promise<{ change: boolean; plan: PlanId }> {
    const now = clock();
    const ctx = { now, graceDays: deps.graceDays, proPriceId: deps.proPriceId };
    const candidates: Array<{ sub: SubscriptionSnapshot; verdict: SubscriptionVerdict }> = [];
    const judge = async (id: string) => {
      const sub = await deps.billing.getSubscription(id);
      if (!sub) return;
      // A subscription of another customer never decides this user's plan.
      if (row.stripe_customer_id && sub.customerId !== row.stripe_customer_id) return;
      const stored = id === row.stripe_subscription_id ? row.past_due_since : null;
      candidates.push({ sub, verdict: judgeSubscription(sub, { pastDueSince: stored, observedAt }, ctx) });
    };
    await judge(subscriptionId);
    // A user can briefly hold two subscriptions (two Checkouts); the one granting Pro wins.
    if (row.stripe_subscription_id && row.stripe_subscription_id !== subscriptionId)
      await judge(row.stripe_subscription_id);
    const chosen = candidates.find((c) => c.verdict.plan === 'pro') ?? candidates[0];
    if (!chosen) return { change: false, plan: row.plan };

    const { sub, verdict } = chosen;
    const graceUntil =
      verdict.pastDueSince && sub.status === 'past_due'
        ? new Date(verdict.pastDueSince.getTime() + deps.graceDays * 86_400_000)
        : null;
    await repo.writeSubscription(tx, row.user_id, {
      plan: verdict.plan,
      status: sub.status,
      subscriptionId: sub.id,
      customerId: sub.customerId,
      currentPeriodStart: sub.currentPeriodStart,
      currentPeriodEnd: sub.currentPeriodEnd,
      graceUntil,
      pastDueSince: verdict.pastDueSince,
      cancelAtPeriodEnd: sub.cancelAtPeriodEnd,
      cancelAt: sub.cancelAt,
      priceId: sub.priceIds.includes(deps.proPriceId) ? deps.proPriceId : (sub.priceIds[0] ?? null),
      reviewAt: verdict.reviewAt,
      syncedAt: now,
    });

    const planChanged = verdict.plan !== row.plan;
    const periodMoved =
      verdict.plan === 'pro' &&
      sub.currentPeriodStart !== null &&
      row.current_period_start?.getTime() !== sub.currentPeriodStart.getTime();
    if (!planChanged && !periodMoved) return { change: false, plan: verdict.plan };

    const usage = await moveUsage(
      tx,
      row.user_id,
      verdict.plan,
      sub,
      now,
      `${row.plan}→${verdict.plan} (${verdict.reason}; ${why})`,
    );
    if (planChanged) await deps.publish(tx, row.user_id, { type: 'plan.changed', plan: verdict.plan });
    await deps.publish(tx, row.user_id, { type: 'usage.changed', usage });
    deps.log.info(
      { userId: row.user_id, from: row.plan, to: verdict.plan, reason: verdict.reason, subscription: sub.id },
      'billing: plan applied',
    );
    return { change: true, plan: verdict.plan };
  }

  /** The user's plan and subscription state (GET /v1/billing/subscription). */
  async function subscriptionState(userId: string): Promise<BillingStateView> {
    return toBillingStateView(await withUserTx(deps.appPool, userId, (tx) => repo.billingState(tx, userId)));
  }

  return { startCheckout, openPortal, handleWebhook, reviewDue, returnUrl, syncCustomerEmail, subscriptionState };
}

export type BillingService = ReturnType<typeof createBillingService>;

/**
 * Points the user's usage at the new plan's period: the running period closes now, the new one
 * starts with the images already used carried over (plan-rules.ts), and the ledger records the
 * adjustment so each period's ledger still sums to its `used`.
 */
async function moveUsage(
  tx: PoolClient,
  userId: string,
  plan: PlanId,
  sub: SubscriptionSnapshot,
  now: Date,
  note: string,
): Promise<Usage> {
  // The per-user lock before the usage row and the generations it moves: the order every writer
  // of a user's usage takes (submit, cancel, set-usage), so a cancel racing a plan change cannot deadlock.
  await lockUser(tx, userId);
  const c = await repo.lockPeriodAt(tx, userId, now);
  const current: UsageWindow | null = c
    ? { used: c.used, limit: c.limit, periodStart: c.period_start, periodEnd: c.period_end }
    : null;
  const next = usageAfterPlanChange({
    to: plan,
    current,
    subscriptionPeriod:
      sub.currentPeriodStart && sub.currentPeriodEnd
        ? { start: sub.currentPeriodStart, end: sub.currentPeriodEnd }
        : null,
    now,
  });
  const before = await repo.lockUsedOf(tx, userId, next.periodStart);
  if (c && c.period_start.getTime() !== next.periodStart.getTime())
    await repo.closePeriod(tx, userId, c.period_start, now);
  await repo.putPeriod(tx, userId, {
    periodStart: next.periodStart,
    periodEnd: next.periodEnd,
    plan,
    used: next.used,
    limit: next.limit,
  });
  await repo.appendAdjustment(
    tx,
    userId,
    next.used - before,
    next.periodStart,
    `plan ${note}: ${next.used} used carried, limit ${next.limit}`,
  );
  // The carried count now lives in the new period, and so do the charges of generations still in
  // flight: a later refund (cancel, failure) gives the images back where they are counted.
  if (c && c.period_start.getTime() !== next.periodStart.getTime() && next.used > 0)
    await repo.moveInFlightGenerations(tx, userId, c.period_start, next.periodStart);
  return {
    used: next.used,
    limit: next.limit,
    periodStart: next.periodStart.toISOString(),
    periodEnd: next.periodEnd.toISOString(),
  };
}
