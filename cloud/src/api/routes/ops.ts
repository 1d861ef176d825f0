import { ErrorBody } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pendingMigrations } from '../../db/migrate.ts';

/**
 * Liveness, readiness and metrics. No user data. /metrics answers only requests that did not come
 * through the load balancer (app.ts); /readyz names pending migrations only to those.
 */
const opsRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/healthz',
    {
      config: { auth: false, rateLimit: false },
      schema: { hide: true, response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      config: { auth: false, rateLimit: false },
      schema: { hide: true, response: { 200: z.object({ status: z.literal('ready') }), 503: ErrorBody } },
    },
    async (req, reply) => {
      let pending: number[];
      try {
        pending = await pendingMigrations(app.db.app);
      } catch (err) {
        app.log.warn({ err }, 'readiness: database unreachable');
        return reply.code(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: 'Database unreachable' } });
      }
      if (pending.length) {
        // Which migrations is for operators (logs, or asking the task directly), not the internet.
        app.log.warn({ pending }, 'readiness: migrations pending');
        return reply.code(503).send({
          error: {
            code: 'SERVICE_UNAVAILABLE',
            message: 'Migrations pending',
            ...(req.internal ? { details: { pending } } : {}),
          },
        });
      }
      return { status: 'ready' as const };
    },
  );
  app.get('/metrics', { config: { auth: false, rateLimit: false }, schema: { hide: true } }, async (_req, reply) => {
    reply.header('content-type', app.metrics.registry.contentType);
    return app.metrics.registry.metrics();
  });
};
export default opsRoutes;
