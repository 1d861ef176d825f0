/**
 * Periodic work that must run once per cluster, not once per API replica: each task is a pg-boss
 * schedule (a cron expression) on its own queue. Every replica registers the same schedule (an
 * upsert of one row) and a worker; pg-boss's timekeeper claims each cron pass for one instance and
 * files each occurrence under a singleton key, and a job is fetched by exactly one worker — so an
 * occurrence runs once however many replicas are up (docs/decisions/0102).
 *
 * Runs as role atelier_system (the queue tables' full user): the app role may not read job rows.
 * Every run is recorded in `periodic_runs` (migration 0100).
 */
import { PgBoss } from 'pg-boss';
import type { Job } from 'pg-boss';
import type { Queryable } from '../db/pool.ts';
import { PGBOSS_SCHEMA, runtimeBoss } from '../queue/pg-boss-job-queue.ts';

export interface PeriodicTask {
  /** The queue name (created by the migrator: PERIODIC_QUEUES). */
  name: PeriodicQueue;
  /** Cron expression, UTC (5 fields; pg-boss runs at most one occurrence per minute). */
  cron: string;
  /** Does the work; returns what it changed (recorded). */
  run(): Promise<Record<string, unknown>>;
}

/** Every periodic task's queue; the migrator creates them (runtime roles cannot create queues). */
export const PERIODIC_QUEUES = [
  'atelier-billing-review',
  'atelier-image-janitor',
  'atelier-upload-sweep',
  'atelier-input-sweep',
] as const;
export type PeriodicQueue = (typeof PERIODIC_QUEUES)[number];
/** API replicas: grace periods that ran out, scheduled cancellations. */
export const BILLING_REVIEW_QUEUE: PeriodicQueue = 'atelier-billing-review';
/** GPU workers: the objects of images tombstoned longer than the retention period. */
export const IMAGE_JANITOR_QUEUE: PeriodicQueue = 'atelier-image-janitor';
/** GPU workers: reservations of uploads never completed, and their objects (issue 13). */
export const UPLOAD_SWEEP_QUEUE: PeriodicQueue = 'atelier-upload-sweep';
/** GPU workers: starting images and masks past retention, or never completed (issue 15). */
export const INPUT_SWEEP_QUEUE: PeriodicQueue = 'atelier-input-sweep';

const MINUTE_STEPS = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60];
const HOUR_STEPS = [1, 2, 3, 4, 6, 8, 12, 24];
const nearest = (steps: number[], want: number) =>
  steps.reduce((best, s) => (Math.abs(s - want) < Math.abs(best - want) ? s : best));

/**
 * The cron (UTC) whose period is closest to `intervalMs` among the evenly spaced ones: every n
 * minutes with n dividing an hour, every n hours with n dividing a day, at most daily, at least
 * every minute (pg-boss's resolution). 300 000 ms → every 5 minutes; 7 minutes → every 6.
 */
export function cronForInterval(intervalMs: number): string {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`interval must be > 0, got ${intervalMs}`);
  const minutes = intervalMs / 60_000;
  if (minutes < 45) {
    const n = nearest(MINUTE_STEPS, minutes);
    if (n < 60) return n === 1 ? '* * * * *' : `*/${n} * * * *`;
  }
  const h = nearest(HOUR_STEPS, minutes / 60);
  if (h === 24) return '0 0 * * *';
  return h === 1 ? '0 * * * *' : `0 */${h} * * *`;
}

export interface PeriodicWorkOptions {
  /** role atelier_system */
  connectionString: string;
  /** Where runs are recorded (system pool). */
  record: Queryable;
  tasks: PeriodicTask[];
  /** How often an instance tries to claim the cron pass (pg-boss: 1–45 s). */
  cronMonitorSeconds: number;
  onError?: (err: Error) => void;
  log?: (obj: object, msg: string) => void;
}

export class PeriodicWork {
  readonly #opts: PeriodicWorkOptions;
  readonly #boss: PgBoss;
  #started = false;

  constructor(opts: PeriodicWorkOptions) {
    this.#opts = opts;
    this.#boss = runtimeBoss({
      connectionString: opts.connectionString,
      application_name: 'atelier-periodic',
      max: 2,
      schedule: true,
      cronMonitorIntervalSeconds: opts.cronMonitorSeconds,
      cronWorkerIntervalSeconds: Math.min(5, opts.cronMonitorSeconds),
      supervise: false,
    });
    this.#boss.on('error', (err) => opts.onError?.(err as Error));
  }

  async start(): Promise<void> {
    if (this.#started || this.#opts.tasks.length === 0) return;
    await this.#boss.start();
    this.#started = true;
    for (const task of this.#opts.tasks) {
      await this.#boss.schedule(task.name, task.cron, null, { tz: 'UTC' });
      await this.#boss.work(task.name, { batchSize: 1, pollingIntervalSeconds: 1 }, async ([job]: Job[]) => {
        if (job) await this.#runOnce(task, job.id);
      });
    }
  }

  async #runOnce(task: PeriodicTask, jobId: string): Promise<void> {
    const startedAt = new Date();
    let ok = true;
    let result: Record<string, unknown>;
    try {
      result = await task.run();
    } catch (e) {
      ok = false;
      result = { error: e instanceof Error ? e.message : String(e) };
    }
    await this.#opts.record.query(
      `INSERT INTO periodic_runs (job_id, task, started_at, ok, result) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (job_id) DO NOTHING`,
      [jobId, task.name, startedAt, ok, JSON.stringify(result)],
    );
    this.#opts.log?.({ task: task.name, jobId, ok, result }, 'periodic: ran');
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#boss.stop({ graceful: true, timeout: 5_000, close: true });
  }
}

/** As the migrator: creates the periodic tasks' queues (the schema exists: installQueues ran). */
export async function installPeriodicQueues(connectionString: string): Promise<void> {
  const boss = new PgBoss({
    connectionString,
    schema: PGBOSS_SCHEMA,
    max: 1,
    migrate: false,
    supervise: false,
    schedule: false,
    registerInstance: false,
    openTelemetry: { enabled: false },
  });
  boss.on('error', () => {});
  await boss.start();
  try {
    for (const name of PERIODIC_QUEUES) {
      // stately: at most one queued and one running; a slow sweep never piles up behind itself.
      // No retries: the next occurrence is the retry.
      if (!(await boss.getQueue(name)))
        await boss.createQueue(name, { policy: 'stately', retryLimit: 0, expireInSeconds: 300 });
    }
  } finally {
    await boss.stop({ graceful: false, close: true });
  }
}
