/** The gallery change feed and per-field edits (issue 13; cloud/src/sync/changes.ts). */
import { ErrorBody, SyncChangesPage, SyncChangesQuery, SyncEditsBody, SyncEditsResponse } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withUserTx } from '../../db/tx.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import { applyEdits, readChanges } from '../../sync/changes.ts';

export interface SyncRouteOptions {
  /** Default: the app's object store (app.objectStore). */
  store?: ObjectStore | undefined;
  /** Unit: seconds a presigned URL stays valid (at most 900). Default: config.gen.s3.presignSeconds. */
  presignSeconds?: number | undefined;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 429: ErrorBody, 503: ErrorBody };

const syncRoutes: FastifyPluginAsyncZod<SyncRouteOptions> = async (app, opts) => {
  const pool = app.db.app;
  const store = opts.store ?? app.objectStore;
  const presignSeconds = opts.presignSeconds ?? app.config.gen.s3.presignSeconds;

  app.get(
    '/v1/sync/changes',
    {
      config: { scope: 'gallery:read' },
      schema: {
        tags: ['sync'],
        summary: "The user's image and board changes after a cursor, in commit-safe order",
        querystring: SyncChangesQuery,
        response: { 200: SyncChangesPage, ...errors },
      },
    },
    async (req) => {
      const userId = req.user!.id;
      return withUserTx(pool, userId, (tx) =>
        readChanges(tx, store, userId, {
          cursor: req.query.cursor,
          limit: req.query.limit,
          presignSeconds,
        }),
      );
    },
  );

  app.post(
    '/v1/sync/edits',
    {
      config: { scope: 'gallery:write' },
      schema: {
        tags: ['sync'],
        summary: 'Apply star, board, rename, delete and restore edits; last writer wins per field',
        body: SyncEditsBody,
        response: { 200: SyncEditsResponse, ...errors },
      },
    },
    async (req) => ({ results: await applyEdits(pool, req.user!.id, req.body.edits) }),
  );
};
export default syncRoutes;
