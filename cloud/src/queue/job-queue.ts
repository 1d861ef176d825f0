/**
 * The queue port. The API enqueues inside the transaction that reserved quota and inserted the
 * generation, so a job exists if and only if that transaction committed. The worker (issue 5)
 * consumes through `work` — usually via `runGenerations` in generation-runner.ts, which keeps
 * the generation row, usage and events in step with the job.
 */
import type { Queryable } from '../db/pool.ts';

export interface GenerationJob {
  generationId: string;
  userId: string;
}

export interface JobRun extends GenerationJob {
  /** The queue's job id. */
  jobId: string;
  /** 1 for the first try, 2 for the first retry, … */
  attempt: number;
  /** True when no retry follows if this attempt fails. */
  lastAttempt: boolean;
}

export interface JobContext {
  /** Aborted when the queue loses this job's claim (lease lapsed) or the queue stops. */
  signal: AbortSignal;
  /** Extends the lease; pg-boss also heart-beats on its own while the handler runs. */
  heartbeat(): Promise<void>;
}

export type JobHandler = (job: JobRun, ctx: JobContext) => Promise<void>;
/** Called once for a job that exhausted its retries or whose worker died on the last attempt. */
export type DeadLetterHandler = (job: GenerationJob & { jobId: string }) => Promise<void>;

export interface WorkOptions {
  /** Jobs run at once by this process. */
  concurrency: number;
  onDeadLetter: DeadLetterHandler;
}

export interface JobQueue {
  start(): Promise<void>;
  /** Enqueues in the caller's transaction. Higher priority is taken first. Returns the job id. */
  enqueue(tx: Queryable, job: GenerationJob, opts: { priority: number; jobId?: string }): Promise<string>;
  /** Cancels a job that has not started, in the caller's transaction. */
  cancel(tx: Queryable, jobId: string): Promise<void>;
  work(handler: JobHandler, opts: WorkOptions): Promise<void>;
  /** Stops taking jobs; waits up to `graceMs` for running handlers. */
  stop(graceMs?: number): Promise<void>;
}

export const GENERATION_QUEUE = 'generations';
export const GENERATION_DEAD_LETTER_QUEUE = 'generations_dead';
