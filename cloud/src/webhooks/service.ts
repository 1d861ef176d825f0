/**
 * The webhooks use cases behind /v1/webhooks (`app.webhooks.service`): endpoints, their secret,
 * the delivery log, replays and test pings. Another user's endpoint or delivery is the same as no
 * such thing: NOT_FOUND, and nothing is written.
 */
import {
  AppError,
  MAX_WEBHOOK_ENDPOINTS,
  newId,
  type CreateWebhookBody,
  type UpdateWebhookBody,
  type WebhookDelivery,
  type WebhookDeliveriesQuery,
  type WebhookDeliveryPage,
  type WebhookEndpoint,
  type WebhookEndpointWithSecret,
} from '@atelier/common';
import type { Pool } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import type { WebhookEmitter } from './emitter.ts';
import {
  countEndpoints,
  deleteEndpoint,
  getDelivery,
  getEndpoint,
  insertEndpoint,
  listDeliveries,
  listEndpoints,
  toDelivery,
  toEndpoint,
  updateEndpoint,
} from './repository.ts';
import { createSecretBox, newSigningSecret } from './secret-box.ts';
import { resolveTarget, type Resolver } from './ssrf.ts';
import type { WebhooksConfig } from './webhooks-config.ts';

export interface WebhookServiceDeps {
  /** Role atelier_app: every query under the user's RLS scope. */
  pool: Pool;
  config: WebhooksConfig;
  emitter: WebhookEmitter;
  resolve?: Resolver;
}

const endpointNotFound = () => new AppError('NOT_FOUND', 'No such webhook endpoint');

export function createWebhookService(deps: WebhookServiceDeps) {
  const box = createSecretBox(deps.config.secretKeys);
  const policy = { allowPrivateTargets: deps.config.allowPrivateTargets, requireHttps: deps.config.requireHttps };
  /** The URL as it will be stored; refused when it is not one Atelier would call now. */
  const checkUrl = async (url: string) => (await resolveTarget(url, policy, deps.resolve)).url.toString();

  async function loadDelivery(tx: Parameters<typeof getDelivery>[0], userId: string, endpointId: string, id: string) {
    const row = await getDelivery(tx, userId, endpointId, id);
    if (!row) throw new AppError('NOT_FOUND', 'No such delivery');
    return row;
  }

  return {
    async list(userId: string): Promise<WebhookEndpoint[]> {
      return (await withUserTx(deps.pool, userId, (tx) => listEndpoints(tx, userId))).map(toEndpoint);
    },

    async get(userId: string, id: string): Promise<WebhookEndpoint> {
      const row = await withUserTx(deps.pool, userId, (tx) => getEndpoint(tx, userId, id));
      if (!row) throw endpointNotFound();
      return toEndpoint(row);
    },

    async create(userId: string, body: CreateWebhookBody): Promise<WebhookEndpointWithSecret> {
      const url = await checkUrl(body.url);
      const id = newId('whk');
      const secret = newSigningSecret();
      // Under the user's lock, so two concurrent creates cannot both pass the cap.
      const row = await withUserTx(
        deps.pool,
        userId,
        async (tx) => {
          if ((await countEndpoints(tx, userId)) >= MAX_WEBHOOK_ENDPOINTS)
            throw new AppError('WEBHOOK_ENDPOINT_LIMIT', `at most ${MAX_WEBHOOK_ENDPOINTS} endpoints`, {
              details: { limit: MAX_WEBHOOK_ENDPOINTS },
            });
          return insertEndpoint(tx, userId, { id, url, events: body.events, sealed: box.seal(id, secret) });
        },
        { lockUser: true },
      );
      return { ...toEndpoint(row), secret };
    },

    async update(userId: string, id: string, body: UpdateWebhookBody): Promise<WebhookEndpoint> {
      const url = body.url === undefined ? undefined : await checkUrl(body.url);
      const row = await withUserTx(deps.pool, userId, (tx) =>
        updateEndpoint(tx, userId, id, { url, events: body.events, enabled: body.enabled }),
      );
      if (!row) throw endpointNotFound();
      return toEndpoint(row);
    },

    async remove(userId: string, id: string): Promise<void> {
      if (!(await withUserTx(deps.pool, userId, (tx) => deleteEndpoint(tx, userId, id)))) throw endpointNotFound();
    },

    /** A new secret; the old one stops signing at once (deliveries still queued sign with the new one). */
    async rotateSecret(userId: string, id: string): Promise<WebhookEndpointWithSecret> {
      const secret = newSigningSecret();
      const row = await withUserTx(deps.pool, userId, (tx) =>
        updateEndpoint(tx, userId, id, { sealed: box.seal(id, secret) }),
      );
      if (!row) throw endpointNotFound();
      return { ...toEndpoint(row), secret };
    },

    async deliveries(userId: string, id: string, q: WebhookDeliveriesQuery): Promise<WebhookDeliveryPage> {
      return withUserTx(deps.pool, userId, async (tx) => {
        if (!(await getEndpoint(tx, userId, id))) throw endpointNotFound();
        const rows = await listDeliveries(tx, userId, id, { cursor: q.cursor, limit: q.limit + 1 });
        const items = rows.slice(0, q.limit).map(toDelivery);
        return { items, nextCursor: rows.length > q.limit ? items[items.length - 1]!.id : null };
      });
    },

    /** Sends the same event (same id and body, a fresh signature) again as a new delivery. */
    async replay(userId: string, id: string, deliveryId: string): Promise<WebhookDelivery> {
      return withUserTx(deps.pool, userId, async (tx) => {
        const endpoint = await getEndpoint(tx, userId, id);
        if (!endpoint) throw endpointNotFound();
        const original = await loadDelivery(tx, userId, id, deliveryId);
        if (!endpoint.enabled) throw new AppError('WEBHOOK_ENDPOINT_DISABLED', 'endpoint disabled');
        const [newIdValue] = await deps.emitter.emitTo(tx, userId, [{ endpointId: id, replayOf: original.id }], {
          id: original.event_id,
          type: original.event_type,
          payload: original.payload,
        });
        return toDelivery(await loadDelivery(tx, userId, id, newIdValue!));
      });
    },

    /** A `ping` event to this endpoint only. */
    async test(userId: string, id: string): Promise<WebhookDelivery> {
      return withUserTx(deps.pool, userId, async (tx) => {
        const endpoint = await getEndpoint(tx, userId, id);
        if (!endpoint) throw endpointNotFound();
        if (!endpoint.enabled) throw new AppError('WEBHOOK_ENDPOINT_DISABLED', 'endpoint disabled');
        const [deliveryId] = await deps.emitter.emitTo(tx, userId, [{ endpointId: id }], {
          type: 'ping',
          data: { endpointId: id },
        });
        return toDelivery(await loadDelivery(tx, userId, id, deliveryId!));
      });
    },
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
