/**
 * Submitting and canceling generations: plan check → quota reservation → generation row + ledger
 * + job, all in one user transaction. Either everything commits (and the events go out) or
 * nothing does.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  AppError,
  checkPlanAllows,
  newId,
  PLANS,
  randomSeed,
  type GenerateRequest,
  type PlanId,
  type ResolvedGenerateRequest,
  type UsageSource,
} from '@atelier/common';
import type { Pool, PoolClient } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import { publishEvent, publishEvents } from '../events/publish.ts';
import type { JobQueue } from '../queue/job-queue.ts';
import { resolveRequestInputs } from '../inputs/service.ts';
import type { WebhookEmitter } from '../webhooks/emitter.ts';
import { currentUsage, refundGeneration, reserve } from '../quota/usage.ts';
import {
  findByIdempotencyKey,
  getGeneration,
  insertGeneration,
  listGenerations,
  markCanceled,
  planAndActive,
  toGeneration,
  usageEvent,
  type GenerationRow,
} from './repository.ts';

/** Resolves the model a request runs on a plan; throws MODEL_NOT_AVAILABLE. */
export type ModelResolver = (requested: string | undefined, plan: PlanId) => string;

export interface GenerationServiceDeps {
  pool: Pool;
  queue: JobQueue;
  /** usage.threshold webhooks, emitted in the reservation's transaction. */
  webhooks?: WebhookEmitter;
  resolveModel: ModelResolver;
  upgradeUrl: string;
  /** Clock override for tests (month rollover); null = the database's now(). */
  now?: () => Date | null;
}

export interface Submitted {
  row: GenerationRow;
  replayed: boolean;
}

const requestHash = (body: GenerateRequest) => createHash('sha256').update(JSON.stringify(body)).digest('hex');

function isUniqueViolation(e: unknown, constraint: string): boolean {
  const pg = e as { code?: string; constraint?: string };
  return pg.code === '23505' && pg.constraint === constraint;
}

export function createGenerationService(deps: GenerationServiceDeps) {
  const at = () => deps.now?.() ?? null;

  async function replay(userId: string, key: string, hash: string, tx?: PoolClient): Promise<Submitted | null> {
    const existing = tx
      ? await findByIdempotencyKey(tx, userId, key)
      : await withUserTx(deps.pool, userId, (t) => findByIdempotencyKey(t, userId, key));
    if (!existing) return null;
    if (existing.request_hash !== hash)
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key reused with a different body', {
        details: { generationId: existing.id },
      });
    return { row: existing, replayed: true };
  }

  /** `source`: which client sent it, for the usage chart only (decision 0180); quota ignores it. */
  async function submit(
    userId: string,
    body: GenerateRequest,
    idempotencyKey: string | null,
    source: UsageSource = 'desktop',
  ): Promise<Submitted> {
    const hash = idempotencyKey ? requestHash(body) : null;
    if (idempotencyKey) {
      const r = await replay(userId, idempotencyKey, hash!);
      if (r) return r;
    }
    try {
      // lockUser: submissions of one user run one at a time, so the concurrent-jobs limit is exact
      // (the quota upsert is race-free on its own).
      return await withUserTx(
        deps.pool,
        userId,
        async (tx) => {
          // Under the user's lock: a retry that waited for the original request sees its row and
          // gets its answer, never a quota or plan refusal caused by the original itself.
          if (idempotencyKey) {
            const r = await replay(userId, idempotencyKey, hash!, tx);
            if (r) return r;
          }
          // Starting image and mask (issue 15): this user's ready inputs or live gallery images, in
          // this transaction and before the reservation, so a refused reference costs nothing.
          await resolveRequestInputs(tx, userId, body);
          const { plan, active } = await planAndActive(tx, userId);
          const check = checkPlanAllows(plan, body, active);
          if (!check.ok)
            throw new AppError('PLAN_REQUIRED', check.message, {
              userMessage: check.message,
              details: { reason: check.reason, plan, requiredPlan: check.requiredPlan, upgradeUrl: deps.upgradeUrl },
            });
          const model = deps.resolveModel(body.model, plan);
          const usage = await reserve(tx, userId, body.count, at());
          if (!usage) {
            const cur = await currentUsage(tx, userId, at());
            throw new AppError('QUOTA_EXCEEDED', 'Quota exceeded', {
              details: {
                used: cur.used,
                limit: cur.limit,
                periodEnd: cur.periodEnd.toISOString(),
                upgradeUrl: deps.upgradeUrl,
              },
            });
          }
          const params: ResolvedGenerateRequest = { ...body, seed: body.seed ?? randomSeed(), model };
          const priority = PLANS[plan].queuePriority;
          const id = newId('gen');
          const jobId = randomUUID();
          const row = await insertGeneration(tx, {
            id,
            userId,
            params,
            priority,
            jobId,
            idempotencyKey,
            requestHash: hash,
            periodStart: usage.periodStart,
            source,
          });
          await deps.queue.enqueue(tx, { generationId: id, userId }, { priority, jobId });
          await publishEvents(tx, userId, [
            { type: 'generation.queued', generation: toGeneration(row) },
            usageEvent(usage),
          ]);
          await deps.webhooks?.usageChanged(tx, userId, usage);
          return { row, replayed: false };
        },
        { lockUser: true },
      );
    } catch (e) {
      // Two requests with one key raced: the loser's whole transaction (and reservation) rolled back.
      if (idempotencyKey && isUniqueViolation(e, 'generations_idempotency')) {
        const r = await replay(userId, idempotencyKey, hash!);
        if (r) return r;
      }
      throw e;
    }
  }

  async function cancel(userId: string, id: string): Promise<GenerationRow> {
    // The per-user lock first, like every writer of this user's usage (submissions, set-usage,
    // plan changes): one lock order, so a cancel racing a plan change cannot deadlock.
    return withUserTx(
      deps.pool,
      userId,
      async (tx) => {
        const row = await getGeneration(tx, userId, id, true);
        if (!row) throw new AppError('NOT_FOUND', 'No such generation');
        if (row.status !== 'queued' && row.status !== 'running')
          throw new AppError('GENERATION_NOT_CANCELABLE', `The generation is ${row.status}`);
        const updated = await markCanceled(tx, userId, id);
        // Only delivered images stay charged; the rest go back, once. The worker records images
        // only while the generation is running, under this row's lock, so none can be delivered
        // after this commit. A queued job will not start.
        const usage = await refundGeneration(
          tx,
          id,
          row.status === 'queued' ? 'canceled before start' : 'canceled while running: undelivered images',
        );
        if (row.status === 'queued' && row.job_id) await deps.queue.cancel(tx, row.job_id);
        if (usage) await publishEvent(tx, userId, usageEvent(usage));
        await publishEvent(tx, userId, { type: 'generation.canceled', generationId: id as never });
        return updated;
      },
      { lockUser: true },
    );
  }

  /** One of the user's generations; another user's id is the same as none (NOT_FOUND). */
  async function get(userId: string, id: string): Promise<GenerationRow> {
    const row = await withUserTx(deps.pool, userId, (tx) => getGeneration(tx, userId, id));
    if (!row) throw new AppError('NOT_FOUND', 'No such generation');
    return row;
  }

  /** The user's generations, newest first, `limit` per page after the `before` id. */
  function list(userId: string, page: { before: string | null; limit: number }) {
    return withUserTx(deps.pool, userId, (tx) => listGenerations(tx, userId, page));
  }

  return { submit, cancel, get, list };
}
export type GenerationService = ReturnType<typeof createGenerationService>;
