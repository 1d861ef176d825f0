/**
 * The account deletion job: resumable, in a crash-safe order (docs/decisions/0130).
 *
 * The request (DELETE /v1/me) already marked the user deleting, canceled and refunded their
 * queued and running generations, in one transaction. The job then runs the remaining steps,
 * recording each in `account_deletions.step` once done, so a crash resumes at the first step not
 * recorded. Every step is idempotent (re-running a step whose effect happened but whose record
 * did not is harmless):
 *
 *   stripe   cancel the subscription, delete the customer (a missing one counts as deleted)
 *   objects  delete everything under users/{id}/ in S3, page by page
 *   rows     move usage records to an anonymous id, delete the user's other rows (one transaction)
 *   cognito  AdminDeleteUser (a missing user counts as deleted)
 *   finish   delete the user row, mark done
 *
 * Money first (no charge after the request), then bytes, then rows, then the identity: while any
 * step is left the user row still exists with deleting_at set, which refuses new work, and the
 * Cognito user still exists, so an operator can still find whom a stuck deletion belongs to.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from '../db/pool.ts';
import { withSystemTx } from '../db/tx.ts';
import type { BillingEraser, IdentityProvider, UserObjects } from './peers.ts';
import {
  billingIds,
  DELETION_STEPS,
  ensureAnonId,
  eraseRows,
  eraseUser,
  getDeletion,
  recordError,
  recordStep,
  startAttempt,
  type DeletionStep,
} from './repository.ts';

export interface DeletionDeps {
  /** atelier_system (BYPASSRLS). */
  systemPool: Pool;
  billing: BillingEraser;
  identity: IdentityProvider;
  objects: Pick<UserObjects, 'deleteAll'>;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Test hook: called after a step's effect and again after its record; a throw stops the run there. */
  onStep?: (step: DeletionStep, phase: 'effect' | 'recorded') => void | Promise<void>;
}

export type DeletionOutcome = 'done' | 'not_found' | 'busy';

/**
 * Runs (or resumes) the deletion of one account. Two runs for one user never overlap: each holds
 * a session advisory lock for its whole run, and a second run answers 'busy' at once.
 */
export async function runAccountDeletion(deps: DeletionDeps, userId: string): Promise<DeletionOutcome> {
  const lockClient = await deps.systemPool.connect();
  let broken = false;
  try {
    const got = await lockClient.query<{ ok: boolean }>(
      `SELECT pg_try_advisory_lock(hashtext('atelier.account_deletion'), hashtext($1)) AS ok`,
      [userId],
    );
    if (!got.rows[0]!.ok) return 'busy';
    try {
      const row = await getDeletion(deps.systemPool, userId);
      if (!row) return 'not_found';
      if (row.step === 'done') return 'done';
      await startAttempt(deps.systemPool, userId);
      for (let i = DELETION_STEPS.indexOf(row.step); i < DELETION_STEPS.length; i++) {
        const step = DELETION_STEPS[i]!;
        try {
          await runStep(deps, userId, step);
        } catch (e) {
          await recordError(deps.systemPool, userId, `${step}: ${(e as Error).message}`).catch(() => undefined);
          throw e;
        }
        deps.log?.info({ userId, step }, 'account deletion step done');
        await deps.onStep?.(step, 'recorded');
      }
      return 'done';
    } finally {
      await lockClient
        .query(`SELECT pg_advisory_unlock(hashtext('atelier.account_deletion'), hashtext($1))`, [userId])
        .catch(() => {
          broken = true;
        });
    }
  } finally {
    lockClient.release(broken);
  }
}

async function runStep(deps: DeletionDeps, userId: string, step: DeletionStep): Promise<void> {
  const effect = async () => deps.onStep?.(step, 'effect');
  switch (step) {
    case 'stripe': {
      await deps.billing.erase(await billingIds(deps.systemPool, userId));
      await effect();
      await recordStep(deps.systemPool, userId, step);
      return;
    }
    case 'objects': {
      const n = await deps.objects.deleteAll(userId);
      deps.log?.info({ userId, objects: n }, 'account objects deleted');
      await effect();
      await recordStep(deps.systemPool, userId, step);
      return;
    }
    case 'rows': {
      // One transaction: the anonymous id, the moves and deletes, and the record commit together.
      await withSystemTx(deps.systemPool, async (tx) => {
        const anon = await ensureAnonId(tx, userId, `deleted_${randomUUID()}`);
        await eraseRows(tx, userId, anon);
        await effect();
        await recordStep(tx, userId, step);
      });
      return;
    }
    case 'cognito': {
      await deps.identity.deleteUser(userId);
      await effect();
      await recordStep(deps.systemPool, userId, step);
      return;
    }
    case 'finish': {
      await withSystemTx(deps.systemPool, async (tx) => {
        await eraseUser(tx, userId);
        await effect();
        await recordStep(tx, userId, step);
      });
      return;
    }
  }
}
