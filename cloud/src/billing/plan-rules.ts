/**
 * The plan rules: what a Stripe subscription entitles a user to, at a given moment. Pure — the
 * caller passes the subscription as Stripe reports it now, what we stored about it, and the clock —
 * so every rule is table-tested (plan-rules.test.ts) and the webhook handler only has to load,
 * decide and store.
 */
import { PLANS, calendarMonthUtc } from '@atelier/common/plans';
import type { PlanId } from '@atelier/common/plans';

/** Stripe's subscription statuses (API 2026-10-28). */
export const SUBSCRIPTION_STATUSES = [
  'active',
  'trialing',
  'past_due',
  'unpaid',
  'canceled',
  'incomplete',
  'incomplete_expired',
  'paused',
] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

/** The fields of a Stripe subscription the rules look at, already normalised. */
export interface SubscriptionSnapshot {
  id: string;
  customerId: string;
  status: SubscriptionStatus;
  /** Prices of the subscription's items. */
  priceIds: string[];
  cancelAtPeriodEnd: boolean;
  /** A cancellation date set through the portal or the API, if any. */
  cancelAt: Date | null;
  /** The billing period, from the subscription items (the subscription itself no longer carries it). */
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
}

export interface PlanRuleContext {
  now: Date;
  /** Unit: days a past_due subscription keeps its plan. */
  graceDays: number;
  /** The Stripe price that is the Pro plan. */
  proPriceId: string;
}

export type VerdictReason =
  | 'active'
  | 'trialing'
  | 'cancel_scheduled'
  | 'period_ended'
  | 'past_due_grace'
  | 'grace_expired'
  | 'unpaid'
  | 'canceled'
  | 'incomplete'
  | 'paused'
  | 'unknown_price';

export interface SubscriptionVerdict {
  plan: PlanId;
  reason: VerdictReason;
  /** When the subscription was first seen past_due (kept while it stays past_due), else null. */
  pastDueSince: Date | null;
  /** When this verdict changes by the clock alone (grace or scheduled cancellation ends), else null. */
  reviewAt: Date | null;
}

const DAY_MS = 86_400_000;

/**
 * Judges one subscription.
 * - active / trialing → pro; a scheduled cancellation keeps pro until it takes effect.
 * - past_due → pro for `graceDays` from when it was first seen past_due, then free.
 * - unpaid / canceled / incomplete / incomplete_expired / paused → free.
 * - a subscription to a price that is not Pro's entitles to nothing.
 * @param pastDueSince what was stored from earlier events; `observedAt` is used when this is the first sighting.
 */
export function judgeSubscription(
  sub: SubscriptionSnapshot,
  stored: { pastDueSince: Date | null; observedAt: Date },
  ctx: PlanRuleContext,
): SubscriptionVerdict {
  const free = (reason: VerdictReason): SubscriptionVerdict => ({
    plan: 'free',
    reason,
    pastDueSince: null,
    reviewAt: null,
  });
  if (!sub.priceIds.includes(ctx.proPriceId)) return free('unknown_price');

  switch (sub.status) {
    case 'active':
    case 'trialing': {
      const endsAt = scheduledEnd(sub);
      if (endsAt && ctx.now.getTime() >= endsAt.getTime()) return free('period_ended');
      return {
        plan: 'pro',
        reason: endsAt ? 'cancel_scheduled' : sub.status,
        pastDueSince: null,
        reviewAt: endsAt,
      };
    }
    case 'past_due': {
      const since = stored.pastDueSince ?? stored.observedAt;
      const graceEnds = new Date(since.getTime() + ctx.graceDays * DAY_MS);
      const endsAt = scheduledEnd(sub);
      if (endsAt && ctx.now.getTime() >= endsAt.getTime())
        return { plan: 'free', reason: 'period_ended', pastDueSince: since, reviewAt: null };
      if (ctx.now.getTime() >= graceEnds.getTime())
        return { plan: 'free', reason: 'grace_expired', pastDueSince: since, reviewAt: null };
      return { plan: 'pro', reason: 'past_due_grace', pastDueSince: since, reviewAt: earliest(graceEnds, endsAt) };
    }
    case 'unpaid':
      return free('unpaid');
    case 'canceled':
      return free('canceled');
    case 'incomplete':
    case 'incomplete_expired':
      return free('incomplete');
    case 'paused':
      return free('paused');
  }
}

/** The best plan any of a user's subscriptions grants (a user may briefly hold two). */
export function effectivePlan(verdicts: readonly SubscriptionVerdict[]): PlanId {
  return verdicts.some((v) => v.plan === 'pro') ? 'pro' : 'free';
}

function scheduledEnd(sub: SubscriptionSnapshot): Date | null {
  const candidates: Date[] = [];
  if (sub.cancelAtPeriodEnd && sub.currentPeriodEnd) candidates.push(sub.currentPeriodEnd);
  if (sub.cancelAt) candidates.push(sub.cancelAt);
  return candidates.reduce<Date | null>((a, b) => earliest(b, a), null);
}

function earliest(a: Date, b: Date | null): Date {
  return b && b.getTime() < a.getTime() ? b : a;
}

export interface UsageWindow {
  used: number;
  limit: number;
  periodStart: Date;
  periodEnd: Date;
}

/**
 * The usage window after a plan change. Pro counts the Stripe billing period, Free the calendar
 * month (UTC). Images already used in a period that is still running are carried over, so an
 * upgrade mid-month keeps its count and only the limit grows (40/100 → 40/1000), and a downgrade
 * cannot reset the count; a period that has ended carries nothing.
 */
export function usageAfterPlanChange(input: {
  to: PlanId;
  current: UsageWindow | null;
  subscriptionPeriod: { start: Date; end: Date } | null;
  now: Date;
}): UsageWindow {
  const { to, current, now } = input;
  const period =
    to === 'pro' && input.subscriptionPeriod && input.subscriptionPeriod.end.getTime() > now.getTime()
      ? input.subscriptionPeriod
      : calendarMonthUtc(now);
  const running = current !== null && current.periodEnd.getTime() > now.getTime();
  return {
    used: running ? current.used : 0,
    limit: PLANS[to].monthlyImages,
    periodStart: period.start,
    periodEnd: period.end,
  };
}
