/**
 * Progress for a running generation, batched: every step still reaches the user's socket as its
 * own `generation.progress` event, in order, but steps that pile up while a write is in flight go
 * out together in ONE statement (update the row + one NOTIFY per step). Under load this keeps the
 * database round trips per image bounded instead of two per denoising step. Same rules as the
 * runner's markProgress: only a `running` generation moves; none updated means it was canceled.
 */
import { AppError } from '@atelier/common';
import type { Queryable } from '../db/pool.ts';
import { EVENTS_CHANNEL } from '../events/publish.ts';

const PROGRESS_SQL = `
  WITH u AS (
    UPDATE generations SET progress_step = $2, progress_total = $3, updated_at = now()
     WHERE id = $1 AND status = 'running'
     RETURNING user_id)
  SELECT count(pg_notify($5, json_build_object('u', u.user_id, 'e', json_build_object(
           'type', 'generation.progress', 'generationId', $1::text, 'step', steps.s, 'total', $3::int))::text))::int AS n,
         (SELECT count(*) FROM u)::int AS updated
    FROM u, (SELECT s FROM unnest($4::int[]) AS s ORDER BY s) AS steps`;

export interface ProgressWriter {
  /** Queues a step (called from the engine's synchronous progress callback). */
  push(step: number): void;
  /** Resolves when every queued step is written; rejects with CANCELED if the generation was canceled. */
  flush(): Promise<void>;
}

export function createProgressWriter(
  db: Queryable,
  generationId: string,
  total: number,
  onCanceled: (err: AppError) => void,
): ProgressWriter {
  let pending: number[] = [];
  let running: Promise<void> | null = null;
  let failure: unknown;

  async function drain(): Promise<void> {
    while (pending.length > 0 && failure === undefined) {
      const steps = pending;
      pending = [];
      try {
        const r = await db.query<{ n: number; updated: number }>(PROGRESS_SQL, [
          generationId,
          steps[steps.length - 1],
          total,
          steps,
          EVENTS_CHANNEL,
        ]);
        if (!r.rows[0] || r.rows[0].updated === 0) {
          failure = new AppError('CANCELED', 'The generation was canceled');
          onCanceled(failure as AppError);
        }
      } catch (e) {
        failure = e;
      }
    }
  }

  return {
    push(step) {
      if (failure !== undefined) return;
      pending.push(step);
      running ??= drain().finally(() => {
        running = null;
      });
    },
    async flush() {
      while (running) await running;
      if (failure !== undefined) throw failure;
    },
  };
}
