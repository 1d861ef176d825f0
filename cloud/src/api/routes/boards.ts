/** Boards: the user's named collections of images. Deleting one keeps or deletes its images, as asked. */
import {
  Board,
  BoardList,
  CreateBoardBody,
  DeleteBoardQuery,
  ErrorBody,
  UpdateBoardBody,
  BoardIdParams,
} from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';

const IdParams = BoardIdParams;
const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody };

const boardRoutes: FastifyPluginAsyncZod = async (app) => {
  const { gallery } = app;

  app.get(
    '/v1/boards',
    { config: { scope: 'gallery:read' }, schema: { tags: ['gallery'], response: { 200: BoardList, ...errors } } },
    async (req) => ({
      items: await gallery.listBoards(req.user!.id),
    }),
  );

  app.post(
    '/v1/boards',
    {
      config: { scope: 'gallery:write' },
      schema: { tags: ['gallery'], body: CreateBoardBody, response: { 201: Board, ...errors } },
    },
    async (req, reply) => reply.code(201).send(await gallery.createBoard(req.user!.id, req.body.name)),
  );

  app.patch(
    '/v1/boards/:id',
    {
      config: { scope: 'gallery:write' },
      schema: { tags: ['gallery'], params: IdParams, body: UpdateBoardBody, response: { 200: Board, ...errors } },
    },
    async (req) => gallery.renameBoard(req.user!.id, req.params.id, req.body.name),
  );

  app.delete(
    '/v1/boards/:id',
    {
      config: { scope: 'gallery:write' },
      schema: {
        tags: ['gallery'],
        params: IdParams,
        querystring: DeleteBoardQuery,
        response: { 204: z.null(), ...errors },
      },
    },
    async (req, reply) => {
      await gallery.deleteBoard(req.user!.id, req.params.id, req.query.images);
      return reply.code(204).send(null);
    },
  );
};
export default boardRoutes;
