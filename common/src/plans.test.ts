import { describe, expect, it } from 'vitest';
import { PLANS, calendarMonthUtc, checkPlanAllows } from './plans.ts';

describe('plans', () => {
  it('free has 100 images per calendar month, pro 1000 per billing period, pro runs first', () => {
    expect(PLANS.free.monthlyImages).toBe(100);
    expect(PLANS.free.period).toBe('calendar_month');
    expect(PLANS.pro.monthlyImages).toBe(1000);
    expect(PLANS.pro.period).toBe('billing_period');
    expect(PLANS.pro.queuePriority).toBeGreaterThan(PLANS.free.queuePriority);
  });

  it.each([
    { plan: 'free', req: { width: 512, height: 512, count: 1 }, active: 0, expected: { ok: true } },
    {
      plan: 'free',
      req: { width: 2048, height: 512, count: 1 },
      active: 0,
      expected: { ok: false, reason: 'resolution', requiredPlan: 'pro' },
    },
    {
      plan: 'free',
      req: { width: 512, height: 512, count: 8 },
      active: 0,
      expected: { ok: false, reason: 'count', requiredPlan: 'pro' },
    },
    {
      plan: 'free',
      req: { width: 512, height: 512, count: 1 },
      active: 2,
      expected: { ok: false, reason: 'concurrency', requiredPlan: 'pro' },
    },
    { plan: 'pro', req: { width: 2048, height: 2048, count: 16 }, active: 7, expected: { ok: true } },
    {
      plan: 'pro',
      req: { width: 512, height: 512, count: 1 },
      active: 8,
      expected: { ok: false, reason: 'concurrency', requiredPlan: null },
    },
  ] as const)('$plan with $req and $active active → $expected.ok', ({ plan, req, active, expected }) => {
    expect(checkPlanAllows(plan, req, active)).toMatchObject(expected);
  });

  it('says which plan allows a refused request', () => {
    const r = checkPlanAllows('free', { width: 1536, height: 1536, count: 1 }, 0);
    expect(r.ok === false && r.message).toMatch(/Pro/);
  });

  it('computes UTC calendar months, including December and leap February', () => {
    expect(calendarMonthUtc(new Date('2026-12-31T23:59:59Z'))).toEqual({
      start: new Date('2026-12-01T00:00:00Z'),
      end: new Date('2027-01-01T00:00:00Z'),
    });
    expect(calendarMonthUtc(new Date('2028-02-29T12:00:00Z')).end).toEqual(new Date('2028-03-01T00:00:00Z'));
  });
});
