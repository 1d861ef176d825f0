/**
 * Webhooks (issue 16): the signed-in user's endpoints on the cloud's /v1/webhooks. The desktop
 * keeps nothing: the signing secret passes through once, from the cloud's create or rotate answer
 * to the panel that shows it.
 */
import {
  WebhookDelivery,
  WebhookDeliveryPage,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookEndpointWithSecret,
  type IpcHandlers,
} from '@atelier/common';
import { z } from 'zod';
import { requireCloud } from '../account-session.ts';
import type { CloudClient } from '../cloud-client.ts';

export interface WebhooksHandlersDeps {
  cloud: CloudClient | null;
}

type Channel =
  | 'webhooks:list'
  | 'webhooks:create'
  | 'webhooks:update'
  | 'webhooks:delete'
  | 'webhooks:rotateSecret'
  | 'webhooks:test'
  | 'webhooks:deliveries'
  | 'webhooks:replay';

export function createWebhooksHandlers(deps: WebhooksHandlersDeps): Pick<IpcHandlers, Channel> {
  const api = () => requireCloud(deps.cloud);
  const at = (id: string, tail = '') => `/v1/webhooks/${encodeURIComponent(id)}${tail}`;
  return {
    'webhooks:list': () => api().request('GET', '/v1/webhooks', WebhookEndpointList),
    'webhooks:create': (body) => api().request('POST', '/v1/webhooks', WebhookEndpointWithSecret, { body }),
    'webhooks:update': ({ id, patch }) => api().request('PATCH', at(id), WebhookEndpoint, { body: patch }),
    'webhooks:delete': async ({ id }) => {
      await api().request('DELETE', at(id), z.undefined());
      return { ok: true as const };
    },
    'webhooks:rotateSecret': ({ id }) => api().request('POST', at(id, '/rotate-secret'), WebhookEndpointWithSecret),
    'webhooks:test': ({ id }) => api().request('POST', at(id, '/test'), WebhookDelivery),
    'webhooks:deliveries': ({ id, cursor }) =>
      api().request(
        'GET',
        at(id, `/deliveries${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`),
        WebhookDeliveryPage,
      ),
    'webhooks:replay': ({ id, deliveryId }) =>
      api().request('POST', at(id, `/deliveries/${encodeURIComponent(deliveryId)}/replay`), WebhookDelivery),
  };
}
