import { AppError, ErrorBody, Me, type PlanId } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withUserTx } from '../../db/tx.ts';
import { createUsageReader } from '../../quota/usage.ts';
import { storageUsage } from '../../sync/uploads.ts';

const meRoutes: FastifyPluginAsyncZod = async (app) => {
  // Concurrent requests share a round trip (each user's read still under their own RLS setting).
  const readUsage = createUsageReader(app.db.app);
  const { now } = app.db;
  app.get(
    '/v1/me',
    { config: { scope: 'account:read' }, schema: { tags: ['account'], response: { 200: Me, 401: ErrorBody } } },
    async (req) => {
      const userId = req.user!.id;
      const [row, storage] = await Promise.all([
        readUsage(userId, now()),
        withUserTx(app.db.app, userId, (tx) => storageUsage(tx, userId)),
      ]);
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
        storage,
      };
    },
  );
};
export default meRoutes;
