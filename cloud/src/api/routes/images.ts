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
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';

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

const imageRoutes: FastifyPluginAsyncZod = async (app) => {
  const { gallery } = app;

  app.get(
    '/v1/images',
    {
      config: { scope: 'gallery:read' },
      schema: { tags: ['gallery'], querystring: ImageListQuery, response: { 200: ImageList, ...errors } },
    },
    async (req) => {
      const q = req.query;
      const page = await gallery.listImages(req.user!.id, {
        before: decodeCursor(q.cursor),
        limit: q.limit,
        board: q.board,
        starred: q.starred === undefined ? undefined : q.starred === 'true',
        q: q.q,
      });
      return { items: page.items, nextCursor: page.next ? encodeCursor(page.next) : null };
    },
  );

  app.get(
    '/v1/images/:id',
    {
      config: { scope: 'gallery:read' },
      schema: { tags: ['gallery'], params: IdParams, response: { 200: Image, ...errors } },
    },
    async (req) => gallery.getImage(req.user!.id, req.params.id),
  );

  app.patch(
    '/v1/images/:id',
    {
      config: { scope: 'gallery:write' },
      schema: {
        tags: ['gallery'],
        params: IdParams,
        body: UpdateImageBody,
        response: { 200: Image, ...errors },
      },
    },
    async (req) => gallery.updateImage(req.user!.id, req.params.id, req.body),
  );

  app.delete(
    '/v1/images/:id',
    {
      config: { scope: 'gallery:write' },
      schema: { tags: ['gallery'], params: IdParams, response: { 204: z.null(), ...errors } },
    },
    async (req, reply) => {
      await gallery.deleteImage(req.user!.id, req.params.id);
      return reply.code(204).send(null);
    },
  );
};
export default imageRoutes;
