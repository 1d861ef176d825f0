/**
 * Usage a person can see and operator metrics (issue 16). The cloud declares these as route
 * schemas; the desktop parses the chart's data with them; the renderer decides the low-quota
 * notices with `quotaNoticeLevel` (pure, so it is tested at exactly 80 % and 100 %).
 */
import { z } from 'zod';
import { PlanId } from '../plans.ts';

/** A calendar day in UTC, `YYYY-MM-DD`, that really exists (no 2026-02-30). */
export const IsoDay = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day as YYYY-MM-DD')
  .refine((s) => {
    const d = new Date(`${s}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
  }, 'is not a calendar day');

/** Unit: days. The longest range one request may ask for (two Pro billing periods fit with room). */
export const MAX_USAGE_RANGE_DAYS = 93;

/**
 * Where a cloud generation came from (decision 0180): the Atelier desktop app, or any other client
 * (scripts, curl, API keys). Display only — quota counts both the same.
 */
export const USAGE_SOURCES = ['desktop', 'api'] as const;
export const UsageSource = z.enum(USAGE_SOURCES);
export type UsageSource = z.infer<typeof UsageSource>;

/** The header the desktop's cloud client sends so its generations count as `desktop`. */
export const CLIENT_HEADER = 'x-atelier-client';

export const UsageDailyQuery = z.object({
  /** First day (UTC), inclusive. Default: the first day of the previous period. */
  from: IsoDay.optional(),
  /** Last day (UTC), inclusive. Default: the last day of the current period. */
  to: IsoDay.optional(),
});
export type UsageDailyQuery = z.infer<typeof UsageDailyQuery>;

const isoTime = z.string().datetime({ offset: true });

export const UsagePeriodSummary = z.object({
  periodStart: isoTime,
  periodEnd: isoTime,
  plan: PlanId,
  /** Unit: cloud images charged in the period (refunds already subtracted). */
  used: z.number().int(),
  /** Unit: cloud images the plan allows in the period. */
  limit: z.number().int(),
});
export type UsagePeriodSummary = z.infer<typeof UsagePeriodSummary>;

export const UsageDay = z.object({
  date: IsoDay,
  /** Unit: cloud images charged for generations the desktop app submitted that day (net of refunds). */
  desktop: z.number().int(),
  /** Unit: cloud images charged for generations other clients (scripts, API keys) submitted that day. */
  api: z.number().int(),
  /** Unit: images an operator added (+) or removed (−) that day; counted in `used`, not a generation. */
  adjusted: z.number().int(),
});
export type UsageDay = z.infer<typeof UsageDay>;

export const UsageDaily = z.object({
  from: IsoDay,
  to: IsoDay,
  current: UsagePeriodSummary.extend({
    /** Unit: cloud images still available in the current period. */
    left: z.number().int(),
  }),
  /** The period before the current one; its figures are zero when nothing was used in it. */
  previous: UsagePeriodSummary,
  /** Every day from `from` to `to`, zeros included, oldest first. */
  days: z.array(UsageDay),
});
export type UsageDaily = z.infer<typeof UsageDaily>;

/** Low-quota notices: at 80 % and at 100 % of the plan's images, once per period each. */
export type QuotaNoticeLevel = 80 | 100;

/** The highest threshold `used` has reached, or null below 80 %. Integer arithmetic: no rounding at the edge. */
export function quotaNoticeLevel(used: number, limit: number): QuotaNoticeLevel | null {
  if (limit <= 0) return null;
  if (used >= limit) return 100;
  if (used * 100 >= limit * 80) return 80;
  return null;
}

export const AdminMetricsQuery = z.object({
  from: IsoDay,
  to: IsoDay,
});
export type AdminMetricsQuery = z.infer<typeof AdminMetricsQuery>;

export const AdminMetricsDay = z.object({
  date: IsoDay,
  /** Unit: distinct users who submitted at least one cloud generation that day. */
  activeUsers: z.number().int(),
  /** Unit: cloud images delivered that day (generations that succeeded that day × their count). */
  images: z.number().int(),
});

/** Aggregates only: no user id, email or per-user figure ever appears here. */
export const AdminMetrics = z.object({
  from: IsoDay,
  to: IsoDay,
  days: z.array(AdminMetricsDay),
  /** Unit: distinct users active on any day of the range. */
  activeUsers: z.number().int(),
  /** Unit: cloud images delivered in the range. */
  images: z.number().int(),
  /** Users who had signed up by the end of the range, by the plan in effect now (live accounts only). */
  planMix: z.object({ free: z.number().int(), pro: z.number().int() }),
  conversion: z.object({
    /** Unit: users who were Free when the range began (or joined during it). */
    freeUsers: z.number().int(),
    /** Unit: those of them who became Pro during the range. */
    converted: z.number().int(),
    /** converted ÷ freeUsers, 0 when there were none. */
    rate: z.number(),
  }),
  queueWait: z.object({
    /** Unit: generations submitted in the range that started on a worker. */
    samples: z.number().int(),
    /** Unit: milliseconds from submission to a worker starting it; null without samples. */
    p50Ms: z.number().nullable(),
    p95Ms: z.number().nullable(),
  }),
  failures: z.object({
    /** Unit: generations that finished (succeeded or failed) in the range. */
    finished: z.number().int(),
    failed: z.number().int(),
    /** failed ÷ finished, 0 when none finished. */
    rate: z.number(),
  }),
});
export type AdminMetrics = z.infer<typeof AdminMetrics>;

/** Images made on this computer per day (the desktop's own library): never counted against quota. */
export const LocalUsageDay = z.object({ date: IsoDay, images: z.number().int() });

/** What the Account chart draws: the cloud's days plus this computer's, over the same days. */
export const UsageChartData = UsageDaily.extend({ local: z.array(LocalUsageDay) });
export type UsageChartData = z.infer<typeof UsageChartData>;

/** A low-quota notice the person closed: it stays closed for the rest of that period. */
export const DismissedNotice = z.object({ periodStart: isoTime, level: z.union([z.literal(80), z.literal(100)]) });
export type DismissedNotice = z.infer<typeof DismissedNotice>;
