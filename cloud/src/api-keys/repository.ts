/** The `api_keys` rows: a user's keys through RLS (withUserTx), and the pre-auth lookup function. */
import type { ApiKey, ApiKeyScope } from '@atelier/common';
import type { Queryable } from '../db/pool.ts';

interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  scopes: ApiKeyScope[];
  created_at: Date;
  last_used_at: Date | null;
}

const COLUMNS = 'id, name, prefix, scopes, created_at, last_used_at';

export const apiKeyFromRow = (r: ApiKeyRow): ApiKey => ({
  id: r.id,
  name: r.name,
  prefix: r.prefix,
  scopes: r.scopes,
  createdAt: r.created_at.toISOString(),
  lastUsedAt: r.last_used_at?.toISOString() ?? null,
});

export async function countLiveKeys(tx: Queryable, userId: string): Promise<number> {
  const r = await tx.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL',
    [userId],
  );
  return r.rows[0]!.n;
}

export async function insertKey(
  tx: Queryable,
  k: { id: string; userId: string; name: string; prefix: string; hash: Buffer; scopes: ApiKeyScope[] },
): Promise<ApiKey> {
  const r = await tx.query<ApiKeyRow>(
    `INSERT INTO api_keys (id, user_id, name, prefix, hash, scopes) VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING ${COLUMNS}`,
    [k.id, k.userId, k.name, k.prefix, k.hash, k.scopes],
  );
  return apiKeyFromRow(r.rows[0]!);
}

/** The user's live keys, newest first. */
export async function listKeys(tx: Queryable, userId: string): Promise<ApiKey[]> {
  const r = await tx.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`,
    [userId],
  );
  return r.rows.map(apiKeyFromRow);
}

/** Revokes a live key of this user; false when there is none (unknown, another user's, already revoked). */
export async function revokeKey(tx: Queryable, userId: string, id: string): Promise<boolean> {
  const r = await tx.query(
    'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL',
    [id, userId],
  );
  return r.rowCount === 1;
}

/** Sets last_used_at unless it was set in the last `throttleSeconds` (one cheap UPDATE, often a no-op). */
export async function touchKey(tx: Queryable, id: string, throttleSeconds: number): Promise<void> {
  await tx.query(
    `UPDATE api_keys SET last_used_at = now()
      WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))`,
    [id, throttleSeconds],
  );
}

export interface KeyLookup {
  id: string;
  userId: string;
  scopes: ApiKeyScope[];
  revoked: boolean;
  /** The account is being deleted (or gone): the key authenticates nothing. */
  deleting: boolean;
}

/** Which key has this hash, before any user is known (SECURITY DEFINER function, migration 0160). */
export async function lookupKey(q: Queryable, hash: Buffer): Promise<KeyLookup | null> {
  const r = await q.query<{ id: string; user_id: string; scopes: ApiKeyScope[]; revoked: boolean; deleting: boolean }>(
    'SELECT id, user_id, scopes, revoked, deleting FROM atelier_api_key_lookup($1)',
    [hash],
  );
  const row = r.rows[0];
  return row
    ? { id: row.id, userId: row.user_id, scopes: row.scopes, revoked: row.revoked, deleting: row.deleting }
    : null;
}
