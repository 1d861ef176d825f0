import { describe, expect, it } from 'vitest';
import { effectivePlan, judgeSubscription, usageAfterPlanChange } from './plan-rules.ts';
import type { SubscriptionSnapshot, SubscriptionStatus } from './plan-rules.ts';

const PRO = 'price_pro';
const day = (n: number) => new Date(Date.UTC(2026, 10, n));
const ctx = (now: Date) => ({ now, graceDays: 7, proPriceId: PRO });
const sub = (status: SubscriptionStatus, over: Partial<SubscriptionSnapshot> = {}): SubscriptionSnapshot => ({
  id: 'sub_1',
  customerId: 'cus_1',
  status,
  priceIds: [PRO],
  cancelAtPeriodEnd: false,
  cancelAt: null,
  currentPeriodStart: day(1),
  currentPeriodEnd: day(31),
  ...over,
});

describe('judgeSubscription', () => {
  const cases: Array<{
    name: string;
    sub: SubscriptionSnapshot;
    now: Date;
    pastDueSince?: Date;
    want: { plan: string; reason: string; reviewAt?: Date | null; pastDueSince?: Date | null };
  }> = [
    { name: 'active → pro', sub: sub('active'), now: day(5), want: { plan: 'pro', reason: 'active', reviewAt: null } },
    { name: 'trialing → pro', sub: sub('trialing'), now: day(5), want: { plan: 'pro', reason: 'trialing' } },
    {
      name: 'cancel at period end keeps pro until the period ends',
      sub: sub('active', { cancelAtPeriodEnd: true }),
      now: day(20),
      want: { plan: 'pro', reason: 'cancel_scheduled', reviewAt: day(31) },
    },
    {
      name: 'cancel at period end, period over, deletion not yet seen → free',
      sub: sub('active', { cancelAtPeriodEnd: true }),
      now: day(31),
      want: { plan: 'free', reason: 'period_ended' },
    },
    {
      name: 'cancel_at date before period end wins',
      sub: sub('active', { cancelAt: day(15), cancelAtPeriodEnd: true }),
      now: day(10),
      want: { plan: 'pro', reason: 'cancel_scheduled', reviewAt: day(15) },
    },
    {
      name: 'past_due first seen now → pro in grace until +7 days',
      sub: sub('past_due'),
      now: day(10),
      want: { plan: 'pro', reason: 'past_due_grace', pastDueSince: day(10), reviewAt: day(17) },
    },
    {
      name: 'past_due 6 days → still pro',
      sub: sub('past_due'),
      now: day(16),
      pastDueSince: day(10),
      want: { plan: 'pro', reason: 'past_due_grace', pastDueSince: day(10) },
    },
    {
      name: 'past_due 7 days → free',
      sub: sub('past_due'),
      now: day(17),
      pastDueSince: day(10),
      want: { plan: 'free', reason: 'grace_expired', pastDueSince: day(10) },
    },
    { name: 'unpaid → free', sub: sub('unpaid'), now: day(5), want: { plan: 'free', reason: 'unpaid' } },
    { name: 'canceled → free', sub: sub('canceled'), now: day(5), want: { plan: 'free', reason: 'canceled' } },
    { name: 'incomplete → free', sub: sub('incomplete'), now: day(5), want: { plan: 'free', reason: 'incomplete' } },
    {
      name: 'incomplete_expired → free',
      sub: sub('incomplete_expired'),
      now: day(5),
      want: { plan: 'free', reason: 'incomplete' },
    },
    { name: 'paused → free', sub: sub('paused'), now: day(5), want: { plan: 'free', reason: 'paused' } },
    {
      name: 'another product’s price → nothing',
      sub: sub('active', { priceIds: ['price_other'] }),
      now: day(5),
      want: { plan: 'free', reason: 'unknown_price' },
    },
    {
      name: 'recovering from past_due clears the grace clock',
      sub: sub('active'),
      now: day(12),
      pastDueSince: day(10),
      want: { plan: 'pro', reason: 'active', pastDueSince: null },
    },
  ];
  it.each(cases)('$name', ({ sub: s, now, pastDueSince, want }) => {
    const v = judgeSubscription(s, { pastDueSince: pastDueSince ?? null, observedAt: now }, ctx(now));
    expect(v).toMatchObject(want);
  });
});

describe('effectivePlan', () => {
  it('is pro when any subscription grants pro, else free', () => {
    const pro = judgeSubscription(sub('active'), { pastDueSince: null, observedAt: day(1) }, ctx(day(2)));
    const gone = judgeSubscription(sub('canceled'), { pastDueSince: null, observedAt: day(1) }, ctx(day(2)));
    expect(effectivePlan([gone, pro])).toBe('pro');
    expect(effectivePlan([gone])).toBe('free');
    expect(effectivePlan([])).toBe('free');
  });
});

describe('usageAfterPlanChange', () => {
  const now = new Date(Date.UTC(2026, 10, 14, 12));
  const freeMonth = { used: 40, limit: 100, periodStart: day(1), periodEnd: new Date(Date.UTC(2026, 11, 1)) };
  it('upgrade mid-month: limit 1000, used carried over, the billing period counts', () => {
    expect(
      usageAfterPlanChange({ to: 'pro', current: freeMonth, subscriptionPeriod: { start: now, end: day(44) }, now }),
    ).toEqual({ used: 40, limit: 1000, periodStart: now, periodEnd: day(44) });
  });
  it('downgrade mid-period keeps the count against the free limit, on the calendar month', () => {
    const proPeriod = { used: 250, limit: 1000, periodStart: day(10), periodEnd: day(40) };
    expect(usageAfterPlanChange({ to: 'free', current: proPeriod, subscriptionPeriod: null, now })).toEqual({
      used: 250,
      limit: 100,
      periodStart: day(1),
      periodEnd: new Date(Date.UTC(2026, 11, 1)),
    });
  });
  it('a period that already ended carries nothing', () => {
    const ended = { used: 900, limit: 1000, periodStart: day(-20), periodEnd: day(10) };
    expect(usageAfterPlanChange({ to: 'free', current: ended, subscriptionPeriod: null, now }).used).toBe(0);
  });
  it('no usage row yet starts at zero', () => {
    expect(usageAfterPlanChange({ to: 'pro', current: null, subscriptionPeriod: null, now })).toMatchObject({
      used: 0,
      limit: 1000,
      periodStart: day(1),
    });
  });
});
