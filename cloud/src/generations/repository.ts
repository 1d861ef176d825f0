/**
 * Generation rows. API functions run inside withUserTx (RLS scopes them to the user, and each
 * query also names the user, so a missing policy would still not leak). Worker functions
 * (mark*) run on the system pool and keep status transitions monotonic: a canceled or finished
 * generation never goes back to running.
 */
import type { Generation, GenerationStatus, PlanId, ResolvedGenerateRequest, UsageSource } from '@atelier/common';
import type { Queryable } from '../db/pool.ts';
import { publishEvent } from '../events/publish.ts';
import { refundGeneration, type UsageRow } from '../quota/usage.ts';

export interface GenerationRow {
  id: string;
  user_id: string;
  status: GenerationStatus;
  params: ResolvedGenerateRequest;
  image_count: number;
  priority: number;
  progress_step: number;
  progress_total: number;
  error_code: string | null;
  attempts: number;
  job_id: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  period_start: Date;
  image_ids: string[];
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export function toGeneration(r: GenerationRow): Generation {
  return {
    id: r.id,
    status: r.status,
    params: r.params,
    priority: r.priority,
    progress: { step: r.progress_step, total: r.progress_total },
    errorCode: r.error_code,
    attempts: r.attempts,
    imageIds: r.image_ids,
    createdAt: r.created_at.toISOString(),
    startedAt: r.started_at?.toISOString() ?? null,
    finishedAt: r.finished_at?.toISOString() ?? null,
  };
}

export const usageEvent = (u: UsageRow) =>
  ({
    type: 'usage.changed',
    usage: {
      used: u.used,
      limit: u.limit,
      periodStart: u.periodStart.toISOString(),
      periodEnd: u.periodEnd.toISOString(),
    },
  }) as const;

export interface NewGeneration {
  id: string;
  userId: string;
  params: ResolvedGenerateRequest;
  priority: number;
  jobId: string;
  idempotencyKey: string | null;
  requestHash: string | null;
  periodStart: Date;
  /** Which client submitted it (decision 0180). Default: the column's, 'desktop'. */
  source?: UsageSource;
}

export async function insertGeneration(tx: Queryable, g: NewGeneration): Promise<GenerationRow> {
  // The generation and its ledger reservation in one statement.
  const r = await tx.query<GenerationRow>(
    `WITH g AS (
       INSERT INTO generations (id, user_id, params, image_count, priority, progress_total, job_id,
         idempotency_key, request_hash, period_start, source)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, 'desktop')) RETURNING *),
     l AS (
       INSERT INTO usage_ledger (user_id, generation_id, kind, amount, period_start)
       SELECT user_id, id, 'reserve', image_count, period_start FROM g)
     SELECT * FROM g`,
    [
      g.id,
      g.userId,
      g.params,
      g.params.count,
      g.priority,
      g.params.steps * g.params.count,
      g.jobId,
      g.idempotencyKey,
      g.requestHash,
      g.periodStart,
      g.source ?? null,
    ],
  );
  return r.rows[0]!;
}

/** The user's effective plan and how many of their generations are queued or running. */
export async function planAndActive(q: Queryable, userId: string): Promise<{ plan: PlanId; active: number }> {
  const r = await q.query<{ plan: PlanId; active: number }>(
    `SELECT COALESCE((SELECT plan FROM effective_plans WHERE user_id = $1), 'free') AS plan,
       (SELECT count(*)::int FROM generations WHERE user_id = $1 AND status IN ('queued', 'running')) AS active`,
    [userId],
  );
  return r.rows[0]!;
}

export async function findByIdempotencyKey(tx: Queryable, userId: string, key: string): Promise<GenerationRow | null> {
  const r = await tx.query<GenerationRow>('SELECT * FROM generations WHERE user_id = $1 AND idempotency_key = $2', [
    userId,
    key,
  ]);
  return r.rows[0] ?? null;
}

export async function getGeneration(
  q: Queryable,
  userId: string,
  id: string,
  lock = false,
): Promise<GenerationRow | null> {
  const r = await q.query<GenerationRow>(
    `SELECT * FROM generations WHERE user_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`,
    [userId, id],
  );
  return r.rows[0] ?? null;
}

/** Newest first; the cursor is the last id of the previous page (ids sort by creation time). */
export async function listGenerations(
  q: Queryable,
  userId: string,
  opts: { before: string | null; limit: number },
): Promise<{ rows: GenerationRow[]; next: string | null }> {
  const r = await q.query<GenerationRow>(
    `SELECT * FROM generations WHERE user_id = $1 AND ($2::text IS NULL OR id < $2)
     ORDER BY id DESC LIMIT $3`,
    [userId, opts.before, opts.limit + 1],
  );
  const rows = r.rows.slice(0, opts.limit);
  return { rows, next: r.rows.length > opts.limit ? rows.at(-1)!.id : null };
}

export async function activeCount(q: Queryable, userId: string): Promise<number> {
  const r = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM generations WHERE user_id = $1 AND status IN ('queued', 'running')`,
    [userId],
  );
  return r.rows[0]!.n;
}

// ── Worker side (system pool) ───────────────────────────────────────────────────────────────

/** queued|running → running for `attempt`. Null when the generation was canceled or finished. */
/** The user's generation → canceled (the caller checked it was queued or running, under the user's lock). */
export async function markCanceled(tx: Queryable, userId: string, id: string): Promise<GenerationRow> {
  const r = await tx.query<GenerationRow>(
    `UPDATE generations SET status = 'canceled', finished_at = now(), updated_at = now()
      WHERE id = $1 AND user_id = $2 RETURNING *`,
    [id, userId],
  );
  return r.rows[0]!;
}

export async function markRunning(q: Queryable, id: string, attempt: number): Promise<GenerationRow | null> {
  const r = await q.query<GenerationRow>(
    `UPDATE generations SET status = 'running', attempts = GREATEST(attempts, $2), progress_step = 0,
       error_code = NULL, started_at = COALESCE(started_at, now()), updated_at = now()
     WHERE id = $1 AND status IN ('queued', 'running') RETURNING *`,
    [id, attempt],
  );
  const row = r.rows[0] ?? null;
  if (row) await publishEvent(q, row.user_id, { type: 'generation.started', generationId: row.id as Generation['id'] });
  return row;
}

/** Records progress; false when the generation is no longer running (canceled): stop work. */
export async function markProgress(q: Queryable, id: string, step: number, total: number): Promise<boolean> {
  const r = await q.query<{ user_id: string }>(
    `UPDATE generations SET progress_step = $2, progress_total = $3, updated_at = now()
     WHERE id = $1 AND status = 'running' RETURNING user_id`,
    [id, step, total],
  );
  const row = r.rows[0];
  if (!row) return false;
  await publishEvent(q, row.user_id, {
    type: 'generation.progress',
    generationId: id as Generation['id'],
    step,
    total,
  });
  return true;
}

export async function markSucceeded(q: Queryable, id: string, imageIds: string[]): Promise<GenerationRow | null> {
  const r = await q.query<GenerationRow>(
    `UPDATE generations SET status = 'succeeded', image_ids = $2, progress_step = progress_total,
       finished_at = now(), updated_at = now()
     WHERE id = $1 AND status = 'running' RETURNING *`,
    [id, imageIds],
  );
  const row = r.rows[0] ?? null;
  if (row)
    await publishEvent(q, row.user_id, {
      type: 'generation.succeeded',
      generationId: row.id as Generation['id'],
      imageIds: row.image_ids as Generation['imageIds'],
    });
  return row;
}

/** An attempt failed and another follows: back to queued. */
export async function markRetrying(q: Queryable, id: string, errorCode: string): Promise<void> {
  await q.query(
    `UPDATE generations SET status = 'queued', error_code = $2, updated_at = now() WHERE id = $1 AND status = 'running'`,
    [id, errorCode],
  );
}

/** Terminal failure: marks failed and refunds exactly once. Null if it had already finished. */
export async function markFailed(q: Queryable, id: string, errorCode: string): Promise<GenerationRow | null> {
  const r = await q.query<GenerationRow>(
    `UPDATE generations SET status = 'failed', error_code = $2, finished_at = now(), updated_at = now()
     WHERE id = $1 AND status IN ('queued', 'running') RETURNING *`,
    [id, errorCode],
  );
  const row = r.rows[0] ?? null;
  if (!row) return null;
  const usage = await refundGeneration(q, id, `failed: ${errorCode}`);
  await publishEvent(q, row.user_id, {
    type: 'generation.failed',
    generationId: row.id as Generation['id'],
    errorCode,
  });
  if (usage) await publishEvent(q, row.user_id, usageEvent(usage));
  return row;
}
