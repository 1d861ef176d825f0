/**
 * The cloud gallery's images: list, read (with presigned URLs), star/move, delete (tombstone).
 * Records are created only by the worker (and the sync upload flow); these routes never accept a
 * key, a prefix or a user id from the client.
 */
import {
  AppError,
  ErrorBody,
  Image,
  ImageIdSchema,
  ImageList,
  ImageListQuery,
  UpdateImageBody,
  ImageIdParams,
} from '@atelier/common';
import type { ImageId } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { withUserTx } from '../../db/tx.ts';
import { withUrls } from '../../db/gallery/gallery-dto.ts';
import { deleteImage, getImage, listImages, updateImage } from '../../db/gallery/images-repository.ts';
import { publishEvent } from '../../events/publish.ts';
import type { ObjectStore } from '../../storage/object-store.ts';

export interface GalleryRouteOptions {
  store: ObjectStore;
  /** Unit: seconds a presigned URL stays valid (at most 900). */
  presignSeconds?: number;
}

const IdParams = ImageIdParams;
const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody, 503: ErrorBody };

export const encodeCursor = (id: string) => Buffer.from(id).toString('base64url');
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (!cursor) return undefined;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!ImageIdSchema.safeParse(id).success)
    throw new AppError('VALIDATION_FAILED', 'cursor is not valid', {
      details: { fields: [{ field: 'cursor', message: 'is not valid', in: 'querystring' }] },
    });
  return id;
}

/** Another user's id is the same as no id at all: 404, never 403. */
const notFound = () => new AppError('NOT_FOUND', 'No such image');

const imageRoutes: FastifyPluginAsyncZod<GalleryRouteOptions> = async (app, opts) => {
  const { pool } = app.atelier;
  const { store } = opts;
  const presign = opts.presignSeconds;

  app.get(
    '/v1/images',
    {
      schema: { tags: ['gallery'], querystring: ImageListQuery, response: { 200: ImageList, ...errors } },
    },
    async (req) => {
      const userId = req.user!.id;
      const q = req.query;
      const page = await withUserTx(pool, userId, (tx) =>
        listImages(tx, userId, {
          before: decodeCursor(q.cursor),
          limit: q.limit,
          board: q.board,
          starred: q.starred === undefined ? undefined : q.starred === 'true',
          q: q.q,
        }),
      );
      // Thumbnails for the grid; the full image URL comes with GET /v1/images/:id.
      const items = await Promise.all(
        page.items.map((r) => withUrls(store, r, { url: false, thumbUrl: true }, presign)),
      );
      return { items, nextCursor: page.next ? encodeCursor(page.next) : null };
    },
  );

  app.get(
    '/v1/images/:id',
    { schema: { tags: ['gallery'], params: IdParams, response: { 200: Image, ...errors } } },
    async (req) => {
      const userId = req.user!.id;
      const row = await withUserTx(pool, userId, (tx) => getImage(tx, userId, req.params.id));
      if (!row) throw notFound();
      return withUrls(store, row, { url: true, thumbUrl: true }, presign);
    },
  );

  app.patch(
    '/v1/images/:id',
    {
      schema: {
        tags: ['gallery'],
        params: IdParams,
        body: UpdateImageBody,
        response: { 200: Image, ...errors },
      },
    },
    async (req) => {
      const userId = req.user!.id;
      const row = await withUserTx(pool, userId, async (tx) => {
        const updated = await updateImage(tx, userId, req.params.id, req.body);
        if (updated) await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [updated.id] });
        return updated;
      });
      if (!row) throw notFound();
      return withUrls(store, row, { url: false, thumbUrl: true }, presign);
    },
  );

  app.delete(
    '/v1/images/:id',
    {
      schema: { tags: ['gallery'], params: IdParams, response: { 204: z.null(), ...errors } },
    },
    async (req, reply) => {
      const userId = req.user!.id;
      const deleted = await withUserTx(pool, userId, async (tx) => {
        const ok = await deleteImage(tx, userId, req.params.id);
        if (ok) await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [req.params.id as ImageId] });
        return ok;
      });
      if (!deleted) throw notFound();
      return reply.code(204).send(null);
    },
  );
};
export default imageRoutes;
