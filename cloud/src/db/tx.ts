import pg from 'pg';
import type { Pool, PoolClient, Queryable } from './pool.ts';

/** The per-transaction setting every RLS policy reads. */
export const USER_SETTING = 'app.user_id';

/** The per-user lock, taken first by every writer of a user's usage (submissions, set-usage). */
const USER_LOCK_SQL = (escapedId: string) => `SELECT 1 FROM users WHERE id = ${escapedId} FOR NO KEY UPDATE`;

/** Takes the per-user lock inside a transaction that is already open (same lock as `lockUser`). */
export async function lockUser(tx: Queryable, userId: string): Promise<void> {
  await tx.query('SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE', [userId]);
}

async function inTx<T>(pool: Pool, begin: string, fn: (tx: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true;
    }
    throw e;
  } finally {
    client.release(broken);
  }
}

/**
 * Runs `fn` in a transaction scoped to one user: `app.user_id` is set with `set_config(..., true)`
 * (transaction-local, so a pooled connection never carries it into another request) and every
 * RLS policy compares `user_id` with it. Use with the `app` pool.
 */
export function withUserTx<T>(
  pool: Pool,
  userId: string,
  fn: (tx: PoolClient) => Promise<T>,
  opts: { lockUser?: boolean } = {},
): Promise<T> {
  if (!userId) throw new Error('withUserTx needs a user id');
  const id = pg.escapeLiteral(userId);
  // BEGIN and the setting in one round trip (a simple multi-statement query; the id is escaped).
  // lockUser serialises this user's transactions on their users row (per-user limits that count rows).
  // NO KEY UPDATE: it excludes the other per-user lockers just the same, but not the KEY SHARE that
  // foreign-key checks (ledger and usage inserts) take — FOR UPDATE deadlocked against those.
  const lock = opts.lockUser ? `; ${USER_LOCK_SQL(id)}` : '';
  return inTx(pool, `BEGIN; SELECT set_config('${USER_SETTING}', ${id}, true)${lock}`, fn);
}

/**
 * Runs `fn` in a transaction with no user: for the worker, webhooks and the admin CLI. Use with the
 * `system` pool (role atelier_system, BYPASSRLS) — through the `app` pool it would see no rows.
 */
export function withSystemTx<T>(pool: Pool, fn: (tx: PoolClient) => Promise<T>): Promise<T> {
  return inTx(pool, 'BEGIN', fn);
}
