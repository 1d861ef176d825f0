import { PgBoss, type ConstructorOptions } from 'pg-boss';
import type { JobWithMetadata } from 'pg-boss';
import type { Config } from '../config.ts';
import type { Queryable } from '../db/pool.ts';
import {
  GENERATION_DEAD_LETTER_QUEUE,
  GENERATION_QUEUE,
  type GenerationJob,
  type JobHandler,
  type JobQueue,
  type WorkOptions,
} from './job-queue.ts';
import { WEBHOOK_QUEUE } from '../webhooks/emitter.ts';

export const PGBOSS_SCHEMA = 'pgboss';
/** pg-boss queue of account deletions (cloud/src/account/worker.ts). */
export const ACCOUNT_DELETION_QUEUE = 'account_deletions';

export interface PgBossJobQueueOptions {
  connectionString: string;
  queue: Config['queue'];
  /** `producer`: only enqueues (the API). `consumer`: also works and supervises (the worker). */
  mode: 'producer' | 'consumer';
  onError?: (err: Error) => void;
}

const asDb = (tx: Queryable) => ({
  executeSql: async (text: string, values?: unknown[]) => {
    const r = await tx.query(text, values);
    return { rows: r.rows };
  },
});

/** The JobQueue on pg-boss 12: transactional send, priorities, heartbeats, retries, a dead-letter queue. */
/**
 * A pg-boss instance for a runtime role (API, worker, their consumers): the schema and queues are
 * installed by the migrator (db/migrate.ts), so it never migrates or creates them, and it skips
 * REINDEX (needs table ownership, which runtime roles deliberately lack) and the vacuum monitor.
 * Each caller adds its pool size, name and what it supervises or schedules.
 */
export function runtimeBoss(opts: ConstructorOptions & { connectionString: string; application_name: string }): PgBoss {
  return new PgBoss({
    schema: PGBOSS_SCHEMA,
    migrate: false,
    createSchema: false,
    schedule: false,
    reindex: false,
    monitorVacuum: false,
    registerInstance: false,
    openTelemetry: { enabled: false },
    ...opts,
  });
}

export class PgBossJobQueue implements JobQueue {
  readonly boss: PgBoss;
  #started = false;

  constructor(opts: PgBossJobQueueOptions) {
    const consumer = opts.mode === 'consumer';
    this.boss = runtimeBoss({
      connectionString: opts.connectionString,
      application_name: `atelier-queue-${opts.mode}`,
      max: consumer ? 4 : 2,
      supervise: consumer,
      superviseIntervalSeconds: opts.queue.superviseSeconds,
      monitorIntervalSeconds: Math.max(opts.queue.superviseSeconds, 10),
      useListenNotify: consumer,
      registerInstance: consumer,
      instanceName: `atelier-${opts.mode}`,
    });
    this.boss.on('error', (err) => opts.onError?.(err as Error));
  }

  async start(): Promise<void> {
    if (this.#started) return;
    await this.boss.start();
    this.#started = true;
  }

  async enqueue(tx: Queryable, job: GenerationJob, opts: { priority: number; jobId?: string }): Promise<string> {
    const id = await this.boss.send(GENERATION_QUEUE, job, {
      priority: opts.priority,
      db: asDb(tx),
      ...(opts.jobId ? { id: opts.jobId } : {}),
    });
    if (!id) throw new Error('pg-boss refused the job');
    return id;
  }

  async cancel(tx: Queryable, jobId: string): Promise<void> {
    await this.boss.cancel(GENERATION_QUEUE, jobId, { db: asDb(tx) });
  }

  async work(handler: JobHandler, opts: WorkOptions): Promise<void> {
    await this.boss.work(
      GENERATION_QUEUE,
      {
        includeMetadata: true,
        localConcurrency: opts.concurrency,
        batchSize: 1,
        pollingIntervalSeconds: 1,
        notifyPollingIntervalSeconds: 1,
      },
      async (jobs: JobWithMetadata<GenerationJob>[]) => {
        for (const job of jobs) {
          await handler(
            {
              generationId: job.data.generationId,
              userId: job.data.userId,
              jobId: job.id,
              attempt: job.retryCount + 1,
              lastAttempt: job.retryCount >= job.retryLimit,
            },
            {
              signal: job.signal,
              heartbeat: async () => {
                await this.boss.touch(GENERATION_QUEUE, { id: job.id, retryCount: job.retryCount });
              },
            },
          );
        }
      },
    );
    await this.boss.work(
      GENERATION_DEAD_LETTER_QUEUE,
      {
        includeMetadata: true,
        localConcurrency: 1,
        batchSize: 1,
        pollingIntervalSeconds: 1,
        notifyPollingIntervalSeconds: 1,
      },
      async (jobs: JobWithMetadata<GenerationJob>[]) => {
        for (const job of jobs)
          await opts.onDeadLetter({ generationId: job.data.generationId, userId: job.data.userId, jobId: job.id });
      },
    );
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.boss.stop({ graceful: true, timeout: graceMs, close: true });
  }
}

/**
 * Installs (or migrates) pg-boss's schema and creates the queues, as the migrator. Runtime roles
 * then get DML on the schema (see db/migrate.ts), never DDL.
 */
export async function installQueues(connectionString: string, queue: Config['queue']): Promise<void> {
  const boss = new PgBoss({
    connectionString,
    schema: PGBOSS_SCHEMA,
    max: 1,
    migrate: true,
    supervise: false,
    schedule: false,
    registerInstance: false,
    openTelemetry: { enabled: false },
  });
  boss.on('error', () => {});
  await boss.start();
  try {
    const common = { retryDelay: 0, expireInSeconds: queue.expireSeconds, notify: true };
    await boss.createQueue(GENERATION_DEAD_LETTER_QUEUE, { ...common, retryLimit: 5 });
    await boss.createQueue(GENERATION_QUEUE, {
      ...common,
      retryLimit: queue.retryLimit,
      heartbeatSeconds: queue.heartbeatSeconds,
      deadLetter: GENERATION_DEAD_LETTER_QUEUE,
    });
    // Account deletion (issue 14, cloud/src/account): retried with backoff; the job resumes from
    // the step its table recorded, so a retry never repeats finished work.
    // `exclusive` per singletonKey (the user id): one queued-or-running deletion per account.
    await boss.createQueue(ACCOUNT_DELETION_QUEUE, {
      policy: 'exclusive',
      retryLimit: 20,
      retryDelay: 30,
      retryBackoff: true,
      expireInSeconds: 15 * 60,
    });
    // Webhook deliveries (issue 16, cloud/src/webhooks): one job per delivery; retries, backoff and
    // the per-user group are set on each job from WEBHOOKS_* (webhooks/emitter.ts).
    await boss.createQueue(WEBHOOK_QUEUE, { retryLimit: 8, retryDelay: 30, retryBackoff: true, notify: true });
    await boss.updateQueue(GENERATION_QUEUE, {
      retryLimit: queue.retryLimit,
      expireInSeconds: queue.expireSeconds,
      heartbeatSeconds: queue.heartbeatSeconds,
      deadLetter: GENERATION_DEAD_LETTER_QUEUE,
      notify: true,
    });
  } finally {
    await boss.stop({ graceful: false, close: true });
  }
}
