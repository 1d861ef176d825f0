import { AppError, ErrorBody, Me, type PlanId } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createUsageReader } from '../../quota/usage.ts';

const meRoutes: FastifyPluginAsyncZod = async (app) => {
  // Concurrent requests share a round trip (each user's read still under their own RLS setting).
  const readUsage = createUsageReader(app.db.app);
  const { now } = app.db;
  app.get('/v1/me', { schema: { tags: ['account'], response: { 200: Me, 401: ErrorBody } } }, async (req) => {
    const userId = req.user!.id;
    const row = await readUsage(userId, now());
    // Only a deleted account (token still unexpired) has no row after provisioning.
    if (!row) throw new AppError('ACCOUNT_DELETED', 'This account has been deleted');
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
    };
  });
};
export default meRoutes;
