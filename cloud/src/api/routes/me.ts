import { ErrorBody, Me, type PlanId } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withUserTx } from '../../db/tx.ts';
import { createUsageReader } from '../../quota/usage.ts';
import { storageUsage } from '../../sync/uploads.ts';

const meRoutes: FastifyPluginAsyncZod = async (app) => {
  const { pool, now } = app.atelier;
  // Concurrent requests share a round trip (each user's read still under their own RLS setting).
  const readUsage = createUsageReader(pool);
  app.get('/v1/me', { schema: { tags: ['account'], response: { 200: Me, 401: ErrorBody } } }, async (req) => {
    const userId = req.user!.id;
    const [row, storage] = await Promise.all([
      readUsage(userId, now?.() ?? null),
      withUserTx(pool, userId, (tx) => storageUsage(tx, userId)),
    ]);
    if (!row) throw new Error(`user ${userId} vanished`);
    return {
      id: userId,
      email: row.email,
      plan: row.plan as PlanId,
      usage: {
        used: row.used,
        limit: row.limit,
        periodStart: row.periodStart.toISOString(),
        periodEnd: row.periodEnd.toISOString(),
      },
      storage,
    };
  });
};
export default meRoutes;
