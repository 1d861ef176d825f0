/** GET /v1/models: the cloud model catalogue, with the plans allowed to use each model. */
import { ModelList } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

const modelRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/v1/models',
    { config: { auth: false }, schema: { tags: ['generations'], security: [], response: { 200: ModelList } } },
    async () => ({
      items: app.catalogue.list().map((m) => ({ id: m.id, name: m.name, plans: m.plans, default: m.default })),
    }),
  );
};
export default modelRoutes;
