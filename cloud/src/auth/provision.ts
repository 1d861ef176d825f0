/**
 * First sight of a Cognito `sub` creates its user row. The email comes from Cognito's GetUser,
 * called with the user's own access token; if Cognito is unreachable the request still succeeds
 * and the email is fetched again on a later request.
 */
import type { Pool } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import { cognitoCall } from './cognito-client.ts';

export type EmailLookup = (accessToken: string) => Promise<string | null>;

export function cognitoEmailLookup(endpoint: string, timeoutMs = 2_000): EmailLookup {
  return async (accessToken) => {
    const r = await cognitoCall<{ UserAttributes?: { Name: string; Value: string }[] }>(
      endpoint,
      'GetUser',
      { AccessToken: accessToken },
      { signal: AbortSignal.timeout(timeoutMs) },
    );
    return r.UserAttributes?.find((a) => a.Name === 'email')?.Value ?? null;
  };
}

export interface Provisioner {
  /** Ensures the user row exists (and has an email when Cognito can tell us). */
  ensure(userId: string, accessToken: string): Promise<void>;
}

export function createProvisioner(
  pool: Pool,
  lookup: EmailLookup,
  log?: (msg: string, err: unknown) => void,
): Provisioner {
  // Users known to be complete in this process: no database round trip for them.
  const complete = new Set<string>();
  const inflight = new Map<string, Promise<void>>();
  async function run(userId: string, accessToken: string): Promise<void> {
    const row = await withUserTx(pool, userId, async (tx) => {
      await tx.query('INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [userId]);
      const r = await tx.query<{ email: string | null }>('SELECT email FROM users WHERE id = $1', [userId]);
      return r.rows[0]!;
    });
    if (row.email) {
      complete.add(userId);
      return;
    }
    let email: string | null = null;
    try {
      email = await lookup(accessToken);
    } catch (e) {
      log?.('email lookup failed; will retry on a later request', e);
      return;
    }
    await withUserTx(pool, userId, (tx) =>
      tx.query('UPDATE users SET email = $2, email_checked_at = now(), updated_at = now() WHERE id = $1', [
        userId,
        email,
      ]),
    );
    complete.add(userId);
  }
  return {
    async ensure(userId, accessToken) {
      if (complete.has(userId)) return;
      let p = inflight.get(userId);
      if (!p) {
        p = run(userId, accessToken).finally(() => inflight.delete(userId));
        inflight.set(userId, p);
      }
      await p;
    },
  };
}
