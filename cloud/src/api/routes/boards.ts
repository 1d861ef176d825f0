/** Boards: the user's named collections of images. Deleting one keeps or deletes its images, as asked. */
import {
  AppError,
  Board,
  BoardList,
  CreateBoardBody,
  DeleteBoardQuery,
  ErrorBody,
  UpdateBoardBody,
  BoardIdParams,
} from '@atelier/common';
import type { ImageId } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { withUserTx } from '../../db/tx.ts';
import { toBoard } from '../../db/gallery/gallery-dto.ts';
import { createBoard, deleteBoard, listBoards, renameBoard } from '../../db/gallery/boards-repository.ts';
import { publishEvent } from '../../events/publish.ts';

const IdParams = BoardIdParams;
const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody };
const notFound = () => new AppError('NOT_FOUND', 'No such board');

const boardRoutes: FastifyPluginAsyncZod = async (app) => {
  const { pool } = app.atelier;

  app.get('/v1/boards', { schema: { tags: ['gallery'], response: { 200: BoardList, ...errors } } }, async (req) => {
    const userId = req.user!.id;
    const boards = await withUserTx(pool, userId, (tx) => listBoards(tx, userId));
    return { items: boards.map(toBoard) };
  });

  app.post(
    '/v1/boards',
    {
      schema: { tags: ['gallery'], body: CreateBoardBody, response: { 201: Board, ...errors } },
    },
    async (req, reply) => {
      const userId = req.user!.id;
      const board = await withUserTx(pool, userId, async (tx) => {
        const b = await createBoard(tx, userId, req.body.name);
        await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [] });
        return b;
      });
      return reply.code(201).send(toBoard(board));
    },
  );

  app.patch(
    '/v1/boards/:id',
    {
      schema: { tags: ['gallery'], params: IdParams, body: UpdateBoardBody, response: { 200: Board, ...errors } },
    },
    async (req) => {
      const userId = req.user!.id;
      const board = await withUserTx(pool, userId, async (tx) => {
        const b = await renameBoard(tx, userId, req.params.id, req.body.name);
        if (b) await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [] });
        return b;
      });
      if (!board) throw notFound();
      return toBoard(board);
    },
  );

  app.delete(
    '/v1/boards/:id',
    {
      schema: {
        tags: ['gallery'],
        params: IdParams,
        querystring: DeleteBoardQuery,
        response: { 204: z.null(), ...errors },
      },
    },
    async (req, reply) => {
      const userId = req.user!.id;
      const changed = await withUserTx(pool, userId, async (tx) => {
        const ids = await deleteBoard(tx, userId, req.params.id, req.query.images);
        if (ids) await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: ids.slice(0, 100) as ImageId[] });
        return ids;
      });
      if (!changed) throw notFound();
      return reply.code(204).send(null);
    },
  );
};
export default boardRoutes;
