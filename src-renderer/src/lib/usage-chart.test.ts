import { describe, expect, it } from 'vitest';
import type { UsageChartData } from '@atelier/common';
import { chartModel, dayLabel, periodDays } from './usage-chart.ts';

const data = (over: Partial<UsageChartData> = {}): UsageChartData => ({
  from: '2026-11-01',
  to: '2026-12-31',
  current: {
    periodStart: '2026-12-01T00:00:00.000Z',
    periodEnd: '2027-01-01T00:00:00.000Z',
    plan: 'free',
    used: 9,
    limit: 100,
    left: 91,
  },
  previous: {
    periodStart: '2026-11-01T00:00:00.000Z',
    periodEnd: '2026-12-01T00:00:00.000Z',
    plan: 'free',
    used: 5,
    limit: 100,
  },
  days: [
    { date: '2026-11-01', desktop: 2, api: 0, adjusted: 0 },
    { date: '2026-11-03', desktop: 0, api: 3, adjusted: 0 },
    { date: '2026-12-01', desktop: 1, api: 0, adjusted: 0 },
    { date: '2026-12-03', desktop: 3, api: 1, adjusted: 4 },
  ],
  local: [{ date: '2026-12-03', images: 6 }],
  ...over,
});

describe('periodDays', () => {
  it('lists every UTC day of a calendar month and of a billing period that starts mid-day', () => {
    expect(periodDays('2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z')).toHaveLength(31);
    const billing = periodDays('2026-11-15T13:20:00Z', '2026-12-15T13:20:00Z');
    expect(billing[0]).toBe('2026-11-15');
    expect(billing.at(-1)).toBe('2026-12-15');
  });
});

describe('chartModel', () => {
  it('runs the cumulative line up to today only, and lays last period over the same day numbers', () => {
    const m = chartModel(data(), '2026-12-03');
    expect(m.days).toHaveLength(31);
    expect(m.days.slice(0, 4).map((d) => d.cumulative)).toEqual([1, 1, 9, null]);
    expect(m.days.slice(0, 4).map((d) => d.previousCumulative)).toEqual([2, 2, 5, 5]);
    // November has 30 days: day 31 has no previous point.
    expect(m.days[30]!.previousCumulative).toBeNull();
    expect(m.days[2]).toMatchObject({ desktop: 3, api: 1, adjusted: 4, local: 6, cloud: 8 });
    expect(m).toMatchObject({ limit: 100, used: 9, left: 91, previousUsed: 5, maxDaily: 10, maxCumulative: 100 });
  });

  it('raises the scale above the limit when usage went past it', () => {
    const over = data();
    over.current = { ...over.current, used: 130, limit: 100, left: 0 };
    expect(chartModel(over, '2026-12-03').maxCumulative).toBe(130);
  });

  it('says each day in words', () => {
    const m = chartModel(data(), '2026-12-03');
    expect(dayLabel(m.days[2]!, 100, 'en-US')).toBe(
      'December 3: 3 cloud images from the app, 1 by API, +4 adjusted by support, 6 on this computer (not counted); 9 of 100 used by then',
    );
    expect(dayLabel(m.days[0]!, 100, 'en-US')).toBe(
      'December 1: 1 cloud image from the app, 0 by API, 0 on this computer (not counted); 1 of 100 used by then',
    );
    expect(dayLabel(m.days[10]!, 100, 'en-US')).toBe(
      'December 11: 0 cloud images from the app, 0 by API, 0 on this computer (not counted)',
    );
  });
});
