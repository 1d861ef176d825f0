/**
 * The inputs table (migration 0150). Every function takes the user id first and filters on it, so
 * the worker's BYPASSRLS connection is scoped like the API's RLS one; another user's input is the
 * same as none.
 */
import type { CloudInput, CreateInputBody, InputPurpose } from '@atelier/common';
import type { Queryable } from '../db/pool.ts';
import type { InputMime } from '../storage/keys.ts';

export interface InputRow {
  id: string;
  user_id: string;
  purpose: InputPurpose;
  content_type: InputMime;
  byte_length: number;
  sha256: string;
  width: number;
  height: number;
  status: 'pending' | 'ready';
  expires_at: Date;
  created_at: Date;
  completed_at: Date | null;
}

export function toCloudInput(r: InputRow): CloudInput {
  return {
    id: r.id,
    purpose: r.purpose,
    contentType: r.content_type,
    byteLength: r.byte_length,
    sha256: r.sha256,
    width: r.width,
    height: r.height,
    status: r.status,
    createdAt: r.created_at.toISOString(),
    expiresAt: r.expires_at.toISOString(),
  };
}

export async function insertInput(
  db: Queryable,
  userId: string,
  id: string,
  body: CreateInputBody,
  /** Unit: seconds until the reservation (and its upload URL) expires. */
  ttlSeconds: number,
): Promise<InputRow> {
  const { rows } = await db.query<InputRow>(
    `INSERT INTO inputs (id, user_id, purpose, content_type, byte_length, sha256, width, height, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))
     RETURNING *`,
    [id, userId, body.purpose, body.contentType, body.byteLength, body.sha256, body.width, body.height, ttlSeconds],
  );
  return rows[0]!;
}

/**
 * The user's input with exactly these declared bytes and role that is pending, or ready for at
 * least `minRemainingSeconds` more: asking again for the same file reuses it (same id), so a
 * client that resends a generation after a crash names the same input and its Idempotency-Key
 * still matches. Pending ones are renewed for `ttlSeconds`.
 */
export async function reuseInput(
  db: Queryable,
  userId: string,
  body: CreateInputBody,
  ttlSeconds: number,
  minRemainingSeconds: number,
): Promise<InputRow | null> {
  const { rows } = await db.query<InputRow>(
    `UPDATE inputs SET expires_at = CASE WHEN status = 'pending' THEN now() + make_interval(secs => $8) ELSE expires_at END
      WHERE id = (SELECT id FROM inputs
                   WHERE user_id = $1 AND sha256 = $2 AND purpose = $3 AND content_type = $4 AND byte_length = $5
                     AND width = $6 AND height = $7
                     AND (status = 'pending' OR expires_at > now() + make_interval(secs => $9))
                   ORDER BY (status = 'ready') DESC, created_at DESC LIMIT 1)
      RETURNING *`,
    [
      userId,
      body.sha256,
      body.purpose,
      body.contentType,
      body.byteLength,
      body.width,
      body.height,
      ttlSeconds,
      minRemainingSeconds,
    ],
  );
  return rows[0] ?? null;
}

/** How many inputs the user holds that have not expired. */
export async function liveInputCount(db: Queryable, userId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM inputs WHERE user_id = $1 AND expires_at > now()',
    [userId],
  );
  return rows[0]!.n;
}

/** The user's input, expired or not (the sweep has not run yet); null for none or another user's. */
export async function getInput(db: Queryable, userId: string, id: string): Promise<InputRow | null> {
  const { rows } = await db.query<InputRow>('SELECT * FROM inputs WHERE user_id = $1 AND id = $2', [userId, id]);
  return rows[0] ?? null;
}

/** Pending → ready, retained `retentionSeconds` from now. Null when it was not pending (raced). */
export async function markInputReady(
  db: Queryable,
  userId: string,
  id: string,
  retentionSeconds: number,
): Promise<InputRow | null> {
  const { rows } = await db.query<InputRow>(
    `UPDATE inputs SET status = 'ready', completed_at = now(), expires_at = now() + make_interval(secs => $3)
      WHERE user_id = $1 AND id = $2 AND status = 'pending' RETURNING *`,
    [userId, id, retentionSeconds],
  );
  return rows[0] ?? null;
}

/**
 * Claims up to `limit` inputs that expired before `cutoff` (system role, SKIP LOCKED so overlapping
 * sweeps split the work) and deletes their rows in the caller's transaction. Inputs named by a
 * queued or running generation are left for a later pass.
 */
export async function takeExpiredInputs(
  db: Queryable,
  cutoff: Date,
  limit: number,
): Promise<Pick<InputRow, 'id' | 'user_id' | 'content_type'>[]> {
  const { rows } = await db.query<Pick<InputRow, 'id' | 'user_id' | 'content_type'>>(
    `DELETE FROM inputs WHERE id IN (
       SELECT i.id FROM inputs i WHERE i.expires_at < $1
          -- A job still waiting for or running on an input keeps it until it ends.
          AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.user_id = i.user_id
                            AND g.status IN ('queued', 'running')
                            AND i.id IN (g.params->>'initImage', g.params->>'mask'))
        ORDER BY i.expires_at LIMIT $2 FOR UPDATE OF i SKIP LOCKED)
     RETURNING id, user_id, content_type`,
    [cutoff, limit],
  );
  return rows;
}

/** Width, height of the user's live gallery image, or null (none, another user's, or deleted). */
export async function liveImageSize(
  db: Queryable,
  userId: string,
  id: string,
): Promise<{ width: number; height: number } | null> {
  const { rows } = await db.query<{ width: number; height: number }>(
    'SELECT width, height FROM images WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL',
    [userId, id],
  );
  return rows[0] ?? null;
}
