/** The `users` rows the API itself writes: first sight of a `sub`, and the verified email. Run inside withUserTx. */
import type { Queryable } from './pool.ts';

export interface UserEmailRow {
  email: string | null;
  email_checked_at: Date | null;
}

/** Creates the user's row on first sight (idempotent) and returns its email state. */
export async function ensureUser(tx: Queryable, userId: string): Promise<UserEmailRow> {
  await tx.query('INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [userId]);
  const r = await tx.query<UserEmailRow>('SELECT email, email_checked_at FROM users WHERE id = $1', [userId]);
  return r.rows[0]!;
}

/** Stores the result of a Cognito email check: a verified email replaces the old one; null keeps it. */
export async function recordEmailCheck(tx: Queryable, userId: string, verifiedEmail: string | null): Promise<void> {
  await tx.query(
    `UPDATE users SET email = COALESCE($2, email), email_checked_at = now(),
            updated_at = CASE WHEN $2::text IS DISTINCT FROM email AND $2::text IS NOT NULL THEN now() ELSE updated_at END
      WHERE id = $1`,
    [userId, verifiedEmail],
  );
}
