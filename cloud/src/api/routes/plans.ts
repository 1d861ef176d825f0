import { PLAN_IDS, PLANS, PlansResponse } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

const planRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/v1/plans',
    { config: { auth: false }, schema: { tags: ['account'], security: [], response: { 200: PlansResponse } } },
    async () => ({ plans: PLAN_IDS.map((id) => PLANS[id]) }),
  );
};
export default planRoutes;
