/**
 * GET /v1/usage/daily — the Account screen's chart (the caller's own usage, under RLS).
 * GET /v1/admin/metrics — operator figures, for users in the `admins` table only (decision 0181).
 */
import { AdminMetrics, AdminMetricsQuery, AppError, ErrorBody, UsageDaily, UsageDailyQuery } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withUserTx } from '../../db/tx.ts';
import { dailyUsage, isAdmin, operatorMetrics } from '../../usage/repository.ts';

const usageRoutes: FastifyPluginAsyncZod = async (app) => {
  const { now } = app.db;

  app.get(
    '/v1/usage/daily',
    {
      config: { scope: 'account:read' },
      schema: {
        tags: ['account'],
        summary: 'Cloud images per day for the current and previous period, by source, with the plan limit',
        querystring: UsageDailyQuery,
        response: { 200: UsageDaily, 400: ErrorBody, 401: ErrorBody },
      },
    },
    async (req) => {
      const userId = req.user!.id;
      return withUserTx(app.db.app, userId, (tx) => dailyUsage(tx, userId, req.query, now()));
    },
  );

  app.get(
    '/v1/admin/metrics',
    {
      schema: {
        tags: ['admin'],
        summary: 'Operator metrics for a UTC day range (admins only; aggregates, no per-user data)',
        querystring: AdminMetricsQuery,
        response: { 200: AdminMetrics, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody },
      },
    },
    async (req) => {
      const userId = req.user!.id;
      // Asked of the database under the caller's own RLS scope: the admins row is the only proof.
      if (!(await withUserTx(app.db.app, userId, (tx) => isAdmin(tx, userId))))
        throw new AppError('ADMIN_REQUIRED', 'Operator metrics are for admins only');
      const system = app.db.system;
      if (!system) throw new AppError('SERVICE_UNAVAILABLE', 'Operator metrics need the system database pool');
      return operatorMetrics(system, req.query.from, req.query.to);
    },
  );
};
export default usageRoutes;
