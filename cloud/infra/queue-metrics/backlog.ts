/**
 * The generation queue's backlog as CloudWatch metrics: the number the GPU fleet scales on
 * (queued + running jobs) and the age of the oldest job still waiting, which the backlog-age alarm
 * watches. Read straight from pg-boss's job table, so it counts exactly what workers would fetch.
 */
import type { MetricDatum } from '@aws-sdk/client-cloudwatch';
import type { Queryable } from '../../src/db/pool.ts';
import { PGBOSS_SCHEMA } from '../../src/queue/pg-boss-job-queue.ts';
import type { QueueLoad } from '../lib/worker-scaling.ts';

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
  /** The largest fleet the recent periods' load wanted (lib/worker-scaling.ts): what the worker service is set to. Unit: tasks. */
  demand: 'WorkerDemand',
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

/**
 * The load the scaling policy sizes the fleet on (lib/worker-scaling.ts, QueueLoad): jobs created
 * and the mean run time of jobs completed in the last `windowSeconds`, and the jobs queued and
 * running now. Completed jobs stay in pg-boss's job table for days, so the window is all there.
 */
export async function readLoad(db: Queryable, queue: string, windowSeconds: number): Promise<QueueLoad> {
  const r = await db.query<{ arrivals: string; mean: string | null; queued: string; running: string }>(
    `SELECT count(*) FILTER (WHERE created_on > now() - make_interval(secs => $2)) AS arrivals,
            extract(epoch FROM avg(completed_on - started_on)
              FILTER (WHERE state = 'completed' AND completed_on > now() - make_interval(secs => $2))) AS mean,
            count(*) FILTER (WHERE state IN ('created', 'retry') AND start_after <= now()) AS queued,
            count(*) FILTER (WHERE state = 'active') AS running
       FROM ${PGBOSS_SCHEMA}.job
      WHERE name = $1
        AND (state IN ('created', 'retry', 'active') OR created_on > now() - make_interval(secs => $2)
             OR completed_on > now() - make_interval(secs => $2))`,
    [queue, windowSeconds],
  );
  const row = r.rows[0];
  return {
    arrivals: Number(row?.arrivals ?? 0),
    meanServiceSeconds: row?.mean == null ? null : Number(row.mean),
    queued: Number(row?.queued ?? 0),
    running: Number(row?.running ?? 0),
  };
}

/** The scaling metric's data point (see lib/worker-scaling.ts, demandOf). */
export function demandDatum(demand: number, environment: string, at: Date): MetricDatum {
  return {
    MetricName: METRICS.demand,
    Value: demand,
    Unit: 'Count',
    Timestamp: at,
    Dimensions: [{ Name: 'Environment', Value: environment }],
  };
}
