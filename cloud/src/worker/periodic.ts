/**
 * The GPU workers' periodic work, once per cluster (docs/decisions/0102): the image janitor
 * (objects of images tombstoned longer than the retention period) and the sweep of uploads never
 * completed (issue 13), and the sweep of starting images and masks past retention (issue 15). Every worker registers the same pg-boss schedules and a consumer for each;
 * any one worker takes each occurrence, and the run is recorded in `periodic_runs`.
 * JANITOR_INTERVAL_SECONDS > 0 enables both, at the closest cron (cronForInterval);
 * PERIODIC_WORK=off leaves them to other workers.
 */
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import {
  cronForInterval,
  IMAGE_JANITOR_QUEUE,
  INPUT_SWEEP_QUEUE,
  PeriodicWork,
  UPLOAD_SWEEP_QUEUE,
  type PeriodicTask,
} from '../periodic/periodic-work.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { sweepExpiredInputs } from '../inputs/service.ts';
import { sweepExpiredUploads } from '../sync/uploads.ts';
import { purgeDeletedImages } from './janitor.ts';

export interface WorkerPeriodicOptions {
  config: Config;
  /** System-role pool: the sweeps' queries and the record of runs. */
  pool: Pool;
  store: ObjectStore;
  onError?: (err: Error) => void;
  log?: (obj: object, msg: string) => void;
}

/** The worker's periodic tasks under this config (none when JANITOR_INTERVAL_SECONDS is 0). */
export function workerPeriodicTasks(opts: Omit<WorkerPeriodicOptions, 'onError' | 'log'>): PeriodicTask[] {
  const { worker } = opts.config.gen;
  if (worker.janitorIntervalMs <= 0) return [];
  const cron = cronForInterval(worker.janitorIntervalMs);
  return [
    {
      name: IMAGE_JANITOR_QUEUE,
      cron,
      run: async () => ({
        purged: await purgeDeletedImages({ db: opts.pool, store: opts.store, retentionMs: worker.retentionMs }),
      }),
    },
    {
      name: UPLOAD_SWEEP_QUEUE,
      cron,
      run: async () => ({ swept: await sweepExpiredUploads({ pool: opts.pool, store: opts.store }) }),
    },
    {
      name: INPUT_SWEEP_QUEUE,
      cron,
      run: async () => ({ swept: await sweepExpiredInputs({ pool: opts.pool, store: opts.store }) }),
    },
  ];
}

/** Started, or null when periodic work is off here or there is nothing to run. Stop it before the pool. */
export async function startWorkerPeriodicWork(opts: WorkerPeriodicOptions): Promise<PeriodicWork | null> {
  const { periodic, database } = opts.config;
  const tasks = workerPeriodicTasks(opts);
  if (!periodic.enabled || tasks.length === 0) return null;
  const work = new PeriodicWork({
    connectionString: database.systemUrl,
    record: opts.pool,
    tasks,
    cronMonitorSeconds: periodic.cronMonitorSeconds,
    onError: opts.onError,
    log: opts.log,
  });
  await work.start();
  return work;
}
