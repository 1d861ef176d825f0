/**
 * Emitting a webhook event: in the caller's transaction, one delivery row per subscribed
 * endpoint and one pg-boss job per delivery (`send(..., { db })` joins the transaction). So an
 * event exists if and only if the state change that caused it committed, and each delivery is its
 * own job: a slow receiver delays only its own deliveries.
 */
import { newId, quotaNoticeLevel, type CloudEvent, type WebhookEventData } from '@atelier/common';
import type { PgBoss } from 'pg-boss';
import type { Queryable } from '../db/pool.ts';
import type { UsageRow } from '../quota/usage.ts';
import { claimUsageNotices, insertDeliveries, subscribedEndpoints } from './repository.ts';
import type { WebhooksConfig } from './webhooks-config.ts';

/** pg-boss queue of deliveries (created by installQueues; consumed by webhooks/worker.ts). */
export const WEBHOOK_QUEUE = 'webhook_deliveries';

export interface WebhookJob {
  deliveryId: string;
}

/** Enqueues delivery jobs in the caller's transaction. */
export interface WebhookJobs {
  enqueue(tx: Queryable, userId: string, deliveryIds: string[]): Promise<void>;
}

const asDb = (tx: Queryable) => ({
  executeSql: async (text: string, values?: unknown[]) => ({ rows: (await tx.query(text, values)).rows }),
});

export function pgBossWebhookJobs(boss: PgBoss, cfg: WebhooksConfig): WebhookJobs {
  return {
    async enqueue(tx, userId, deliveryIds) {
      if (deliveryIds.length === 0) return;
      await boss.insert(
        WEBHOOK_QUEUE,
        deliveryIds.map((deliveryId) => ({
          data: { deliveryId } satisfies WebhookJob,
          retryLimit: cfg.retryLimit,
          retryDelay: cfg.retryDelaySeconds,
          retryBackoff: true,
          retryDelayMax: 6 * 3600,
          // Above one attempt's timeout, so a hung receiver is cut by us, not by the queue.
          expireInSeconds: Math.ceil(cfg.timeoutMs / 1000) + 30,
          // The group is the user: WEBHOOKS_USER_CONCURRENCY caps how many of one user's deliveries
          // run at once across workers, so one user's slow receivers cannot take every slot.
          group: { id: userId },
        })),
        { db: asDb(tx) },
      );
    },
  };
}

export interface WebhookEmitter {
  /** Emits to every enabled endpoint of the user subscribed to the event. Returns the delivery ids. */
  emit(tx: Queryable, userId: string, event: WebhookEventData): Promise<string[]>;
  /** Emits to exactly these endpoints (test pings and replays), whatever they subscribe to. */
  emitTo(
    tx: Queryable,
    userId: string,
    targets: { endpointId: string; replayOf?: string }[],
    event: WebhookEventData | { id: string; type: string; payload: string },
  ): Promise<string[]>;
  /** After usage went up: usage.threshold at 80 % and 100 %, once per period each. */
  usageChanged(tx: Queryable, userId: string, usage: UsageRow): Promise<void>;
}

export function serializeEvent(
  event: WebhookEventData,
  now = new Date(),
): { id: string; type: string; payload: string } {
  const id = newId('evt');
  return {
    id,
    type: event.type,
    payload: JSON.stringify({ id, type: event.type, createdAt: now.toISOString(), data: event.data }),
  };
}

export function createWebhookEmitter(jobs: WebhookJobs): WebhookEmitter {
  const emitTo: WebhookEmitter['emitTo'] = async (tx, userId, targets, event) => {
    if (targets.length === 0) return [];
    const serialized = 'payload' in event ? event : serializeEvent(event);
    const rows = targets.map((t) => ({ id: newId('whd'), endpointId: t.endpointId, replayOf: t.replayOf ?? null }));
    await insertDeliveries(tx, userId, rows, serialized);
    await jobs.enqueue(
      tx,
      userId,
      rows.map((r) => r.id),
    );
    return rows.map((r) => r.id);
  };
  return {
    emitTo,
    async emit(tx, userId, event) {
      const endpoints = await subscribedEndpoints(tx, userId, event.type);
      return emitTo(
        tx,
        userId,
        endpoints.map((endpointId) => ({ endpointId })),
        event,
      );
    },
    async usageChanged(tx, userId, usage) {
      // The same rule as the app's low-quota notices; a jump past both thresholds sends both.
      const level = quotaNoticeLevel(usage.used, usage.limit);
      if (level === null) return;
      const reached = level === 100 ? [80, 100] : [80];
      for (const threshold of await claimUsageNotices(tx, userId, usage.periodStart, reached))
        await this.emit(tx, userId, {
          type: 'usage.threshold',
          data: {
            threshold: threshold as 80 | 100,
            used: usage.used,
            limit: usage.limit,
            plan: usage.plan,
            periodStart: usage.periodStart.toISOString(),
            periodEnd: usage.periodEnd.toISOString(),
          },
        });
    },
  };
}

/** A CloudEvent publisher that also emits `plan.changed` webhooks in the same transaction. */
export function publishWithWebhooks(
  publish: (q: Queryable, userId: string, event: CloudEvent) => Promise<void>,
  emitter: WebhookEmitter,
): (q: Queryable, userId: string, event: CloudEvent) => Promise<void> {
  return async (q, userId, event) => {
    await publish(q, userId, event);
    if (event.type === 'plan.changed')
      await emitter.emit(q, userId, { type: 'plan.changed', data: { plan: event.plan } });
  };
}
