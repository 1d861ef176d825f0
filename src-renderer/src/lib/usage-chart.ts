/**
 * The Account chart's model, from the `usage:daily` answer: one slot per day of the current
 * period with its bars (cloud images from the app, from the API, operator adjustments, and the
 * images this computer made, which never count), the cumulative cloud images against the plan
 * limit, and the previous period's cumulative line laid over the same day numbers. Pure, so the
 * numbers a person reads in the chart are tested without a browser.
 */
import type { UsageChartData } from '@atelier/common';

export interface ChartDay {
  date: string;
  /** 1 = the first day of the period. */
  dayOfPeriod: number;
  desktop: number;
  api: number;
  adjusted: number;
  /** Images made on this computer that day (not counted against the plan). */
  local: number;
  /** Cloud images counted this day: desktop + api + adjusted. */
  cloud: number;
  /** Cloud images counted from the period's first day to the end of this one; null for days still ahead. */
  cumulative: number | null;
  /** The previous period's count up to its own day with the same number; null past its end. */
  previousCumulative: number | null;
}

export interface ChartModel {
  days: ChartDay[];
  limit: number;
  used: number;
  left: number;
  previousUsed: number;
  previousLimit: number;
  /** The tallest day's bar (cloud + local), at least 1 so an empty period still has a scale. */
  maxDaily: number;
  /** The top of the cumulative scale: the limit, or more when usage or last period went past it. */
  maxCumulative: number;
  periodStart: string;
  periodEnd: string;
}

const DAY_MS = 86_400_000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The UTC days of the period [start, end), first to last. */
export function periodDays(periodStart: string, periodEnd: string): string[] {
  const out: string[] = [];
  const first = Date.parse(`${dayOf(Date.parse(periodStart))}T00:00:00Z`);
  const last = Date.parse(`${dayOf(Date.parse(periodEnd) - 1)}T00:00:00Z`);
  for (let t = first; t <= last; t += DAY_MS) out.push(dayOf(t));
  return out;
}

export function chartModel(data: UsageChartData, today: string): ChartModel {
  const cloud = new Map(data.days.map((d) => [d.date, d]));
  const local = new Map(data.local.map((d) => [d.date, d.images]));
  const count = (date: string) => {
    const d = cloud.get(date);
    return d ? d.desktop + d.api + d.adjusted : 0;
  };
  const previous = periodDays(data.previous.periodStart, data.previous.periodEnd);
  let prevRunning = 0;
  const prevCumulative = previous.map((date) => (prevRunning += count(date)));
  let running = 0;
  const days = periodDays(data.current.periodStart, data.current.periodEnd).map((date, i): ChartDay => {
    const d = cloud.get(date);
    const counted = count(date);
    running += counted;
    return {
      date,
      dayOfPeriod: i + 1,
      desktop: d?.desktop ?? 0,
      api: d?.api ?? 0,
      adjusted: d?.adjusted ?? 0,
      local: local.get(date) ?? 0,
      cloud: counted,
      cumulative: date <= today ? running : null,
      previousCumulative: prevCumulative[i] ?? null,
    };
  });
  const maxDaily = Math.max(1, ...days.map((d) => Math.max(0, d.desktop) + Math.max(0, d.api) + d.local));
  const maxCumulative = Math.max(
    data.current.limit,
    data.current.used,
    ...days.map((d) => Math.max(d.cumulative ?? 0, d.previousCumulative ?? 0)),
    1,
  );
  return {
    days,
    limit: data.current.limit,
    used: data.current.used,
    left: data.current.left,
    previousUsed: data.previous.used,
    previousLimit: data.previous.limit,
    maxDaily,
    maxCumulative,
    periodStart: data.current.periodStart,
    periodEnd: data.current.periodEnd,
  };
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** The sentence a screen reader (and the tooltip) gives for one day. */
export function dayLabel(d: ChartDay, limit: number, locale?: string): string {
  const when = new Date(`${d.date}T00:00:00Z`).toLocaleDateString(locale, {
    month: 'long',
    day: 'numeric',
    timeZone: 'UTC',
  });
  const parts = [
    `${plural(d.desktop, 'cloud image', 'cloud images')} from the app`,
    `${d.api} by API`,
    ...(d.adjusted !== 0 ? [`${d.adjusted > 0 ? '+' : ''}${d.adjusted} adjusted by support`] : []),
    `${d.local} on this computer (not counted)`,
  ];
  const total = d.cumulative === null ? '' : `; ${d.cumulative} of ${limit} used by then`;
  return `${when}: ${parts.join(', ')}${total}`;
}
