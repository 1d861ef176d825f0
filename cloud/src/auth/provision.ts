/**
 * First sight of a Cognito `sub` creates its user row. The email comes from Cognito's GetUser,
 * called with the user's own access token, and is stored only once Cognito says it is verified:
 * an address nobody proved they own never becomes the account's (or the Stripe customer's) email.
 * It is re-read every `refreshMs`, so a verified change reaches the account; an unverified change
 * leaves the last verified email in place. If Cognito is unreachable the request still succeeds
 * and the email is fetched again on a later request.
 */
import type { Pool } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import { ensureUser, recordEmailCheck } from '../db/users-repository.ts';
import { cognitoCall } from './cognito-client.ts';

export interface CognitoEmail {
  email: string | null;
  /** Cognito's `email_verified` attribute is "true". */
  verified: boolean;
}

export type EmailLookup = (accessToken: string) => Promise<CognitoEmail>;

/**
 * `absentMeansVerified`: cognito-local (the local stack) never sets `email_verified` when a sign-up
 * is confirmed with its code, as Cognito does; there only an explicit "false" (an unverified
 * change) counts as unverified. Production passes false: only "true" is verified.
 */
export function cognitoEmailLookup(
  endpoint: string,
  timeoutMs = 2_000,
  opts: { absentMeansVerified?: boolean } = {},
): EmailLookup {
  return async (accessToken) => {
    const r = await cognitoCall<{ UserAttributes?: { Name: string; Value: string }[] }>(
      endpoint,
      'GetUser',
      { AccessToken: accessToken },
      { signal: AbortSignal.timeout(timeoutMs) },
    );
    const attr = (name: string) => r.UserAttributes?.find((a) => a.Name === name)?.Value;
    const v = attr('email_verified');
    return { email: attr('email') ?? null, verified: v === 'true' || (v === undefined && !!opts.absentMeansVerified) };
  };
}

export interface Provisioner {
  /** Ensures the user row exists (and has the verified email when Cognito can tell us). */
  ensure(userId: string, accessToken: string): Promise<void>;
}

export function createProvisioner(
  pool: Pool,
  lookup: EmailLookup,
  log?: (msg: string, err: unknown) => void,
  opts: {
    refreshMs?: number;
    now?: () => number;
    /** Called after a (newly) verified email is stored: the Stripe customer follows it. */
    onEmailChanged?: (userId: string, email: string) => Promise<void>;
  } = {},
): Provisioner {
  const refreshMs = opts.refreshMs ?? 3_600_000;
  // Without a verified email yet, look again sooner: the user may be verifying it right now.
  const unverifiedMs = Math.min(refreshMs, 60_000);
  const now = opts.now ?? Date.now;
  // When each user's email is next due for a check with Cognito, in this process.
  const due = new Map<string, number>();
  const inflight = new Map<string, Promise<void>>();
  async function run(userId: string, accessToken: string): Promise<void> {
    const row = await withUserTx(pool, userId, (tx) => ensureUser(tx, userId));
    const last = row.email_checked_at?.getTime() ?? null;
    if (row.email && last !== null && now() - last < refreshMs) {
      due.set(userId, last + refreshMs);
      return;
    }
    let found: CognitoEmail;
    try {
      found = await lookup(accessToken);
    } catch (e) {
      log?.('email lookup failed; will retry on a later request', e);
      // With an email already stored, keep it and look again at the next refresh instead of
      // calling Cognito on every request; without one, try again on the next request.
      if (row.email) due.set(userId, now() + refreshMs);
      return;
    }
    const verified = found.verified && found.email ? found.email : null;
    await withUserTx(pool, userId, (tx) => recordEmailCheck(tx, userId, verified));
    due.set(userId, now() + ((verified ?? row.email) ? refreshMs : unverifiedMs));
    if (verified && verified !== row.email && opts.onEmailChanged)
      await opts.onEmailChanged(userId, verified).catch((e: unknown) => log?.('email change hook failed', e));
  }
  return {
    async ensure(userId, accessToken) {
      const next = due.get(userId);
      if (next !== undefined && now() < next) return;
      let p = inflight.get(userId);
      if (!p) {
        p = run(userId, accessToken).finally(() => inflight.delete(userId));
        inflight.set(userId, p);
      }
      await p;
    },
  };
}
