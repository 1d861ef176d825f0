/**
 * Where deletion jobs run: a pg-boss consumer on the account_deletions queue, connected as
 * atelier_system (job payloads name users; the app role cannot read them). Started by the API
 * process (server.ts), which already holds the Stripe key, the S3 bucket and Cognito's admin right.
 *
 * On start it also enqueues every deletion still open (singleton per user, so no duplicate): a
 * job that ran out of retries (Stripe down for a day) is picked up again by the next deploy.
 */
import type { PgBoss} from 'pg-boss';
import { type Job } from 'pg-boss';
import type { Queryable } from '../db/pool.ts';
import { ACCOUNT_DELETION_QUEUE, runtimeBoss } from '../queue/pg-boss-job-queue.ts';
import { runAccountDeletion, type DeletionDeps } from './deletion.ts';
import { MAX_PRESIGN_SECONDS } from '../storage/keys.ts';
import { getDeletion, openDeletions } from './repository.ts';

export interface DeletionJob {
  userId: string;
  /**
   * The second pass over `users/{userId}/`, run once every URL presigned before the request has
   * expired: a PUT through such a URL can still land after the objects step (docs/decisions/0130).
   */
  lateSweep?: boolean;
}

/** Unit: seconds after the longest-lived presigned URL expires before the late sweep runs (clock skew). */
const LATE_SWEEP_MARGIN_SECONDS = 30;

const asDb = (tx: Queryable) => ({
  executeSql: async (text: string, values?: unknown[]) => ({ rows: (await tx.query(text, values)).rows }),
});

/** The request side: enqueues in the caller's transaction (the one that marked the user deleting). */
export interface DeletionJobs {
  enqueue(tx: Queryable, userId: string): Promise<void>;
}

export function pgBossDeletionJobs(boss: PgBoss): DeletionJobs {
  return {
    async enqueue(tx, userId) {
      // The queue's `exclusive` policy keyed by user: one queued-or-running deletion per account,
      // however often DELETE /v1/me is repeated (a duplicate send inserts nothing).
      await boss.send(ACCOUNT_DELETION_QUEUE, { userId } satisfies DeletionJob, {
        singletonKey: userId,
        db: asDb(tx),
      });
    },
  };
}

export interface DeletionWorker {
  boss: PgBoss;
  stop(): Promise<void>;
}

export async function startDeletionWorker(
  deps: DeletionDeps & {
    connectionString: string;
    onError?: (err: Error) => void;
    /**
     * Unit: seconds. How long a URL presigned before the deletion request may still be used: the
     * API's S3_PRESIGN_SECONDS (at most 900). Default: MAX_PRESIGN_SECONDS.
     */
    presignSeconds?: number;
    /** Unit: seconds. Default: 30. */
    lateSweepMarginSeconds?: number;
  },
): Promise<DeletionWorker> {
  const boss = runtimeBoss({
    connectionString: deps.connectionString,
    application_name: 'atelier-account-deletion',
    max: 2,
    supervise: true,
  });
  boss.on('error', (err) => deps.onError?.(err as Error));
  await boss.start();
  await boss.work(
    ACCOUNT_DELETION_QUEUE,
    { batchSize: 1, localConcurrency: 1, pollingIntervalSeconds: 2 },
    async (jobs: Job<DeletionJob>[]) => {
      for (const job of jobs) {
        const { userId } = job.data;
        if (job.data.lateSweep) {
          const n = await deps.objects.deleteAll(userId);
          // Objects here were put through a URL presigned before the request: worth an operator's look.
          if (n > 0)
            deps.log?.warn({ userId, objects: n }, 'late sweep deleted objects put after the account deletion');
          else deps.log?.info({ userId }, 'late sweep found nothing under the deleted account');
          continue;
        }
        const outcome = await runAccountDeletion(deps, userId);
        // Another run holds this user's lock: fail so pg-boss retries after it finished or died.
        if (outcome === 'busy') throw new Error('another run is deleting this account');
        if (outcome === 'done') await scheduleLateSweep(userId);
      }
    },
  );
  // Once per account (its own singleton key, so the running deletion job does not block it), due
  // when the last URL presigned before the request has expired.
  async function scheduleLateSweep(userId: string): Promise<void> {
    const row = await getDeletion(deps.systemPool, userId);
    if (!row) return;
    const wait =
      (deps.presignSeconds ?? MAX_PRESIGN_SECONDS) + (deps.lateSweepMarginSeconds ?? LATE_SWEEP_MARGIN_SECONDS);
    await boss.send(ACCOUNT_DELETION_QUEUE, { userId, lateSweep: true } satisfies DeletionJob, {
      singletonKey: `${userId}:late-sweep`,
      startAfter: new Date(row.requested_at.getTime() + wait * 1000),
    });
  }
  const jobs = pgBossDeletionJobs(boss);
  for (const userId of await openDeletions(deps.systemPool)) await jobs.enqueue(deps.systemPool, userId);
  return {
    boss,
    stop: () => boss.stop({ graceful: true, timeout: 10_000, close: true }),
  };
}
