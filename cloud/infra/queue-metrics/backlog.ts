/**
 * The generation queue's backlog as CloudWatch metrics: the number the GPU fleet scales on
 * (queued + running jobs) and the age of the oldest job still waiting, which the backlog-age alarm
 * watches. Read straight from pg-boss's job table, so it counts exactly what workers would fetch.
 */
import type { MetricDatum } from '@aws-sdk/client-cloudwatch';
import type { Queryable } from '../../src/db/pool.ts';
import { PGBOSS_SCHEMA } from '../../src/queue/pg-boss-job-queue.ts';

export const METRIC_NAMESPACE = 'Atelier';
export const METRICS = {
  /** Jobs waiting for a worker (including retries waiting for their delay). Unit: count. */
  queued: 'QueuedJobs',
  /** Jobs a worker is running. Unit: count. */
  active: 'ActiveJobs',
  /** queued + active: the fleet's target size is ceil(backlog / jobs per task). Unit: count. */
  backlog: 'QueueBacklog',
  /** Age of the oldest job that could run now but has not started. 0 when none waits. Unit: seconds. */
  oldestAge: 'OldestQueuedJobAgeSeconds',
} as const;

export interface Backlog {
  queued: number;
  active: number;
  /** Unit: seconds. */
  oldestQueuedSeconds: number;
}

export async function readBacklog(db: Queryable, queue: string): Promise<Backlog> {
  const r = await db.query<{ queued: string; active: string; oldest: string | null }>(
    `SELECT count(*) FILTER (WHERE state IN ('created', 'retry')) AS queued,
            count(*) FILTER (WHERE state = 'active') AS active,
            extract(epoch FROM now() - min(created_on) FILTER (WHERE state IN ('created', 'retry') AND start_after <= now())) AS oldest
       FROM ${PGBOSS_SCHEMA}.job
      WHERE name = $1 AND state IN ('created', 'retry', 'active')`,
    [queue],
  );
  const row = r.rows[0];
  return {
    queued: Number(row?.queued ?? 0),
    active: Number(row?.active ?? 0),
    oldestQueuedSeconds: Math.max(0, Math.floor(Number(row?.oldest ?? 0))),
  };
}

export function toMetricData(b: Backlog, environment: string, at: Date): MetricDatum[] {
  const dims = [{ Name: 'Environment', Value: environment }];
  const datum = (MetricName: string, Value: number, Unit: 'Count' | 'Seconds'): MetricDatum => ({
    MetricName,
    Value,
    Unit,
    Timestamp: at,
    Dimensions: dims,
  });
  return [
    datum(METRICS.queued, b.queued, 'Count'),
    datum(METRICS.active, b.active, 'Count'),
    datum(METRICS.backlog, b.queued + b.active, 'Count'),
    datum(METRICS.oldestAge, b.oldestQueuedSeconds, 'Seconds'),
  ];
}
