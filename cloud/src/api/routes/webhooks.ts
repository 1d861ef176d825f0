/** Outbound webhooks (issue 16): endpoints, their signing secret, the delivery log, replay and test. */
import {
  CreateWebhookBody,
  ErrorBody,
  UpdateWebhookBody,
  WebhookDeliveriesQuery,
  WebhookDelivery,
  WebhookDeliveryPage,
  WebhookDeliveryParams,
  WebhookEndpoint,
  WebhookEndpointIdParams,
  WebhookEndpointList,
  WebhookEndpointWithSecret,
} from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 429: ErrorBody };
const tags = ['webhooks'];
const Params = WebhookEndpointIdParams;

const webhookRoutes: FastifyPluginAsyncZod = async (app) => {
  const { service } = app.webhooks;

  app.get('/v1/webhooks', { schema: { tags, response: { 200: WebhookEndpointList, ...errors } } }, async (req) => ({
    items: await service.list(req.user!.id),
  }));

  app.post(
    '/v1/webhooks',
    {
      schema: {
        tags,
        description: 'Registers an endpoint. The signing secret is in this response only: store it now.',
        body: CreateWebhookBody,
        response: { 201: WebhookEndpointWithSecret, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await service.create(req.user!.id, req.body)),
  );

  app.get(
    '/v1/webhooks/:id',
    { schema: { tags, params: Params, response: { 200: WebhookEndpoint, ...errors } } },
    async (req) => service.get(req.user!.id, req.params.id),
  );

  app.patch(
    '/v1/webhooks/:id',
    { schema: { tags, params: Params, body: UpdateWebhookBody, response: { 200: WebhookEndpoint, ...errors } } },
    async (req) => service.update(req.user!.id, req.params.id, req.body),
  );

  app.delete(
    '/v1/webhooks/:id',
    { schema: { tags, params: Params, response: { 204: z.null(), ...errors } } },
    async (req, reply) => {
      await service.remove(req.user!.id, req.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/webhooks/:id/rotate-secret',
    {
      schema: {
        tags,
        description: 'Replaces the signing secret; the old one stops signing at once. The new secret is shown once.',
        params: Params,
        response: { 200: WebhookEndpointWithSecret, ...errors },
      },
    },
    async (req) => service.rotateSecret(req.user!.id, req.params.id),
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      schema: {
        tags,
        params: Params,
        querystring: WebhookDeliveriesQuery,
        response: { 200: WebhookDeliveryPage, ...errors },
      },
    },
    async (req) => service.deliveries(req.user!.id, req.params.id, req.query),
  );

  app.post(
    '/v1/webhooks/:id/deliveries/:deliveryId/replay',
    {
      schema: {
        tags,
        description: 'Sends the same event (same id and body, new signature) again, as a new delivery.',
        params: WebhookDeliveryParams,
        response: { 202: WebhookDelivery, ...errors },
      },
    },
    async (req, reply) =>
      reply.code(202).send(await service.replay(req.user!.id, req.params.id, req.params.deliveryId)),
  );

  app.post(
    '/v1/webhooks/:id/test',
    {
      schema: {
        tags,
        description: 'Sends a `ping` event to this endpoint.',
        params: Params,
        response: { 202: WebhookDelivery, ...errors },
      },
    },
    async (req, reply) => reply.code(202).send(await service.test(req.user!.id, req.params.id)),
  );
};
export default webhookRoutes;
