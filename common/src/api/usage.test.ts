import { describe, expect, it } from 'vitest';
import { IsoDay, quotaNoticeLevel } from './usage.ts';

describe('quotaNoticeLevel', () => {
  it.each([
    // [used, limit, level]: exactly at 80 % and 100 %, and one image either side.
    [79, 100, null],
    [80, 100, 80],
    [99, 100, 80],
    [100, 100, 100],
    [101, 100, 100],
    [799, 1000, null],
    [800, 1000, 80],
    [999, 1000, 80],
    [1000, 1000, 100],
    // 80 % of 7 is 5.6: 5 is below it, 6 reaches it (no rounding down to a notice too early).
    [5, 7, null],
    [6, 7, 80],
    [0, 100, null],
    [0, 0, null],
  ])('%i of %i → %s', (used, limit, level) => {
    expect(quotaNoticeLevel(used, limit)).toBe(level);
  });
});

describe('IsoDay', () => {
  it('accepts real calendar days only', () => {
    expect(IsoDay.safeParse('2026-12-03').success).toBe(true);
    expect(IsoDay.safeParse('2024-02-29').success).toBe(true);
    for (const bad of ['2026-02-29', '2026-13-01', '2026-1-01', '20261203', '2026-12-03T00:00:00Z', ''])
      expect(IsoDay.safeParse(bad).success, bad).toBe(false);
  });
});
