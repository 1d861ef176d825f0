/**
 * SQL of account deletion and export. Request-side functions run inside `withUserTx` on the app
 * pool (RLS); job-side functions on the system pool (atelier_system).
 */
import type { Queryable } from '../db/pool.ts';

export const DELETION_STEPS = ['stripe', 'objects', 'rows', 'cognito', 'finish'] as const;
export type DeletionStep = (typeof DELETION_STEPS)[number];

export interface DeletionRow {
  user_id: string;
  step: DeletionStep | 'done';
  anon_id: string | null;
  attempts: number;
  requested_at: Date;
  completed_at: Date | null;
}

/** An active generation of the user (queued or running), for cancellation with refund. */
export interface ActiveGeneration {
  id: string;
  status: 'queued' | 'running';
  job_id: string | null;
}

// ── request side (app pool, the user's RLS scope, user row locked) ──

/** Records the request (once) and marks the user deleting. Returns the deletion row. */
export async function markDeleting(tx: Queryable, userId: string): Promise<{ requestedAt: Date; fresh: boolean }> {
  const ins = await tx.query<{ requested_at: Date }>(
    `INSERT INTO account_deletions (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING RETURNING requested_at`,
    [userId],
  );
  if (ins.rows[0]) {
    await tx.query('UPDATE users SET deleting_at = now(), updated_at = now() WHERE id = $1', [userId]);
    return { requestedAt: ins.rows[0].requested_at, fresh: true };
  }
  const r = await tx.query<{ requested_at: Date }>('SELECT requested_at FROM account_deletions WHERE user_id = $1', [
    userId,
  ]);
  return { requestedAt: r.rows[0]!.requested_at, fresh: false };
}

export async function activeGenerations(tx: Queryable, userId: string): Promise<ActiveGeneration[]> {
  const r = await tx.query<ActiveGeneration>(
    `SELECT id, status, job_id FROM generations WHERE user_id = $1 AND status IN ('queued', 'running')
      ORDER BY id FOR UPDATE`,
    [userId],
  );
  return r.rows;
}

export async function markCanceled(tx: Queryable, userId: string, id: string): Promise<void> {
  await tx.query(
    `UPDATE generations SET status = 'canceled', error_code = 'ACCOUNT_DELETED', finished_at = now(), updated_at = now()
      WHERE id = $1 AND user_id = $2`,
    [id, userId],
  );
}

/** Whether the user asked for deletion (any state). */
export async function isDeleting(q: Queryable, userId: string): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM users WHERE id = $1 AND deleting_at IS NOT NULL', [userId]);
  return r.rowCount === 1;
}

// ── export (app pool, the user's RLS scope) ──

export interface ExportImageRow {
  id: string;
  board_id: string | null;
  starred: boolean;
  width: number;
  height: number;
  metadata: unknown;
  size: number;
  sha256: string;
  created_at: Date;
}

/** The user's live images, oldest first, in pages (keyset on id). */
export async function exportImagesPage(
  tx: Queryable,
  userId: string,
  after: string | null,
  limit: number,
): Promise<ExportImageRow[]> {
  const r = await tx.query<ExportImageRow>(
    `SELECT id, board_id, starred, width, height, metadata, size, sha256, created_at
       FROM images WHERE user_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id > $2)
      ORDER BY id LIMIT $3`,
    [userId, after, limit],
  );
  return r.rows;
}

export async function exportBoards(
  tx: Queryable,
  userId: string,
): Promise<{ id: string; name: string; created_at: Date }[]> {
  const r = await tx.query<{ id: string; name: string; created_at: Date }>(
    'SELECT id, name, created_at FROM boards WHERE user_id = $1 AND deleted_at IS NULL ORDER BY id',
    [userId],
  );
  return r.rows;
}

export async function exportAccount(
  tx: Queryable,
  userId: string,
): Promise<{ email: string | null; created_at: Date; plan: string; deleting: boolean } | null> {
  const r = await tx.query<{ email: string | null; created_at: Date; plan: string; deleting: boolean }>(
    `SELECT u.email, u.created_at, p.plan, u.deleting_at IS NOT NULL AS deleting
       FROM users u JOIN effective_plans p ON p.user_id = u.id WHERE u.id = $1`,
    [userId],
  );
  return r.rows[0] ?? null;
}

// ── job side (system pool) ──

export async function getDeletion(q: Queryable, userId: string): Promise<DeletionRow | null> {
  const r = await q.query<DeletionRow>('SELECT * FROM account_deletions WHERE user_id = $1', [userId]);
  return r.rows[0] ?? null;
}

export async function openDeletions(q: Queryable): Promise<string[]> {
  const r = await q.query<{ user_id: string }>(
    `SELECT user_id FROM account_deletions WHERE step <> 'done' ORDER BY requested_at`,
  );
  return r.rows.map((x) => x.user_id);
}

export async function startAttempt(q: Queryable, userId: string): Promise<void> {
  await q.query('UPDATE account_deletions SET attempts = attempts + 1, updated_at = now() WHERE user_id = $1', [
    userId,
  ]);
}

export async function recordStep(q: Queryable, userId: string, done: DeletionStep): Promise<void> {
  const i = DELETION_STEPS.indexOf(done);
  const next = DELETION_STEPS[i + 1] ?? 'done';
  await q.query(
    `UPDATE account_deletions SET step = $2, last_error = NULL, updated_at = now(),
            completed_at = CASE WHEN $2 = 'done' THEN now() END,
            anon_id = CASE WHEN $2 = 'done' THEN NULL ELSE anon_id END
      WHERE user_id = $1 AND step = $3`,
    [userId, next, done],
  );
}

export async function recordError(q: Queryable, userId: string, message: string): Promise<void> {
  await q.query('UPDATE account_deletions SET last_error = $2, updated_at = now() WHERE user_id = $1', [
    userId,
    message.slice(0, 500),
  ]);
}

export async function billingIds(
  q: Queryable,
  userId: string,
): Promise<{ customerId: string | null; subscriptionId: string | null }> {
  const r = await q.query<{ stripe_customer_id: string | null; stripe_subscription_id: string | null }>(
    'SELECT stripe_customer_id, stripe_subscription_id FROM subscriptions WHERE user_id = $1',
    [userId],
  );
  return {
    customerId: r.rows[0]?.stripe_customer_id ?? null,
    subscriptionId: r.rows[0]?.stripe_subscription_id ?? null,
  };
}

/** Sets the anonymous id once (kept across a crash) and returns it. */
export async function ensureAnonId(q: Queryable, userId: string, fresh: string): Promise<string> {
  const r = await q.query<{ anon_id: string }>(
    `UPDATE account_deletions SET anon_id = COALESCE(anon_id, $2) WHERE user_id = $1 RETURNING anon_id`,
    [userId, fresh],
  );
  return r.rows[0]!.anon_id;
}

/** Anonymises the usage records and deletes the user's other rows (migration 0130). */
export async function eraseRows(q: Queryable, userId: string, anonId: string): Promise<void> {
  await q.query('SELECT atelier_erase_account_rows($1, $2)', [userId, anonId]);
  // Finished queue jobs still carry the user id in their payload until pg-boss's retention drops
  // them; the user's generation jobs go now (the deletion job itself is not one of them).
  await q.query(`DELETE FROM pgboss.job WHERE name IN ('generations', 'generations_dead') AND data->>'userId' = $1`, [
    userId,
  ]);
}

export async function eraseUser(q: Queryable, userId: string): Promise<void> {
  await q.query('SELECT atelier_erase_account_user($1)', [userId]);
}
