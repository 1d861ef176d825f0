import { ErrorBody, Me, type PlanId } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withUserTx } from '../../db/tx.ts';
import { currentUsage } from '../../quota/usage.ts';

const meRoutes: FastifyPluginAsyncZod = async (app) => {
  const { pool, now, userRateLimit } = app.atelier;
  app.get(
    '/v1/me',
    { preHandler: userRateLimit, schema: { tags: ['account'], response: { 200: Me, 401: ErrorBody } } },
    async (req) => {
      const userId = req.user!.id;
      return withUserTx(pool, userId, async (tx) => {
        const u = await tx.query<{ email: string | null }>('SELECT email FROM users WHERE id = $1', [userId]);
        const usage = await currentUsage(tx, userId, now?.() ?? null);
        return {
          id: userId,
          email: u.rows[0]?.email ?? null,
          plan: usage.plan as PlanId,
          usage: {
            used: usage.used,
            limit: usage.limit,
            periodStart: usage.periodStart.toISOString(),
            periodEnd: usage.periodEnd.toISOString(),
          },
        };
      });
    },
  );
};
export default meRoutes;
