/**
 * `/v1/api-keys`: a signed-in user's API keys (issue 16). No scope is declared on purpose: these
 * routes take a Cognito session only, so a leaked key can neither mint more keys nor revoke the
 * owner's others (docs/decisions/0160).
 */
import { ApiKeyIdParams, ApiKeyList, CreateApiKeyBody, CreatedApiKey, ErrorBody } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { createApiKeyService } from '../../api-keys/service.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 429: ErrorBody };

const apiKeyRoutes: FastifyPluginAsyncZod = async (app) => {
  const keys = createApiKeyService(app.db.app);

  app.post(
    '/v1/api-keys',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Create an API key (the whole key is in this answer only)',
        body: CreateApiKeyBody,
        response: { 201: CreatedApiKey, 409: ErrorBody, 410: ErrorBody, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await keys.create(req.user!.id, req.body)),
  );

  app.get(
    '/v1/api-keys',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'List live API keys (prefix, name, scopes, created, last used; never the key)',
        response: { 200: ApiKeyList, ...errors },
      },
    },
    async (req) => ({ items: await keys.list(req.user!.id) }),
  );

  app.delete(
    '/v1/api-keys/:id',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Revoke an API key (refused on the next request by every API process)',
        params: ApiKeyIdParams,
        response: { 204: z.null(), ...errors },
      },
    },
    async (req, reply) => {
      await keys.revoke(req.user!.id, req.params.id);
      return reply.code(204).send(null);
    },
  );
};
export default apiKeyRoutes;
