/**
 * The consumer side of the generation queue, for the worker (issue 5): it keeps the generation
 * row, the user's usage and their events in step with the job, so the worker only turns params
 * into images.
 *
 *   await runGenerations({ queue, pool: systemPool, concurrency: 1, generate: async (gen, ctx) => {
 *     … await ctx.progress(step, total) …           // throws CANCELED once the user canceled
 *     return { imageIds };
 *   } });
 *
 * A throw with a retryable error (or a non-AppError) retries while attempts remain; a
 * non-retryable AppError, or the last attempt, fails the generation and refunds it once. A worker
 * that dies mid-job stops heart-beating; pg-boss's supervisor fails the attempt and the job is
 * taken again (or dead-lettered → failed + refunded).
 */
import { AppError } from '@atelier/common';
import type { Pool } from '../db/pool.ts';
import {
  markFailed,
  markProgress,
  markRetrying,
  markRunning,
  markSucceeded,
  type GenerationRow,
} from '../generations/repository.ts';
import type { JobQueue, JobRun } from './job-queue.ts';
import { withSystemTx } from '../db/tx.ts';
import type { WebhookEmitter } from '../webhooks/emitter.ts';

export interface GenerateContext {
  /** Aborted when the user cancels, the lease is lost, or the worker stops. */
  signal: AbortSignal;
  attempt: number;
  /** Records progress and publishes it; throws AppError CANCELED if the generation was canceled. */
  progress(step: number, total: number, preview?: string): Promise<void>;
  heartbeat(): Promise<void>;
}

export type Generate = (generation: GenerationRow, ctx: GenerateContext) => Promise<{ imageIds: string[] }>;

export interface RunGenerationsOptions {
  queue: JobQueue;
  /** The system pool (role atelier_system): the worker acts for every user. */
  pool: Pool;
  generate: Generate;
  concurrency: number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  /** generation.succeeded / generation.failed webhooks, emitted in the transaction that records the outcome. */
  webhooks?: WebhookEmitter;
}

export async function runGenerations(opts: RunGenerationsOptions): Promise<void> {
  const log = opts.log ?? (() => {});
  const { webhooks } = opts;
  // The outcome and its webhook deliveries commit together (or neither does).
  const succeed = (id: string, imageIds: string[]) =>
    webhooks
      ? withSystemTx(opts.pool, async (tx) => {
          const row = await markSucceeded(tx, id, imageIds);
          if (row)
            await webhooks.emit(tx, row.user_id, {
              type: 'generation.succeeded',
              data: { generationId: row.id, imageIds: row.image_ids },
            });
          return row;
        })
      : markSucceeded(opts.pool, id, imageIds);
  const fail = (id: string, code: string) =>
    webhooks
      ? withSystemTx(opts.pool, async (tx) => {
          const row = await markFailed(tx, id, code);
          if (row)
            await webhooks.emit(tx, row.user_id, {
              type: 'generation.failed',
              data: { generationId: row.id, errorCode: code as never },
            });
          return row;
        })
      : markFailed(opts.pool, id, code);
  await opts.queue.work(
    async (job: JobRun, jobCtx) => {
      const row = await markRunning(opts.pool, job.generationId, job.attempt);
      if (!row) {
        log('generation no longer runnable; skipping', { generationId: job.generationId });
        return;
      }
      const canceled = new AbortController();
      const signal = AbortSignal.any([jobCtx.signal, canceled.signal]);
      const ctx: GenerateContext = {
        signal,
        attempt: job.attempt,
        heartbeat: jobCtx.heartbeat,
        async progress(step, total) {
          if (!(await markProgress(opts.pool, job.generationId, step, total))) {
            canceled.abort(new AppError('CANCELED'));
            throw new AppError('CANCELED', 'The generation was canceled');
          }
        },
      };
      try {
        const { imageIds } = await opts.generate(row, ctx);
        if (canceled.signal.aborted) return;
        await succeed(job.generationId, imageIds);
      } catch (e) {
        if (canceled.signal.aborted || AppError.is(e, 'CANCELED')) return;
        const code = AppError.is(e) ? e.code : 'ENGINE_FAILED';
        const retryable = AppError.is(e) ? e.retryable : true;
        if (!retryable || job.lastAttempt) {
          log('generation failed', { generationId: job.generationId, code, attempt: job.attempt });
          await fail(job.generationId, code);
          return;
        }
        log('generation attempt failed; retrying', { generationId: job.generationId, code, attempt: job.attempt });
        await markRetrying(opts.pool, job.generationId, code);
        throw e;
      }
    },
    {
      concurrency: opts.concurrency,
      onDeadLetter: async (job) => {
        log('dead letter: failing generation', { generationId: job.generationId });
        await fail(job.generationId, 'ENGINE_FAILED');
      },
    },
  );
}
