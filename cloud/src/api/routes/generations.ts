import {
  AppError,
  CreateGenerationBody,
  ErrorBody,
  Generation,
  GenerationIdSchema,
  GenerationList,
  PageQuery,
  GenerationIdParams,
} from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { toGeneration } from '../../generations/repository.ts';

const IdParams = GenerationIdParams;
const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\x21-\x7e]+$/, 'Idempotency-Key must be printable ASCII')
    .optional(),
});
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody };

const encodeCursor = (id: string) => Buffer.from(id).toString('base64url');
function decodeCursor(cursor: string | undefined): string | null {
  if (!cursor) return null;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!GenerationIdSchema.safeParse(id).success)
    throw new AppError('VALIDATION_FAILED', 'cursor is not valid', {
      details: { fields: [{ field: 'cursor', message: 'is not valid' }] },
    });
  return id;
}

const generationRoutes: FastifyPluginAsyncZod = async (app) => {
  const { generations, metrics } = app;

  app.post(
    '/v1/generations',
    {
      schema: {
        tags: ['generations'],
        body: CreateGenerationBody,
        headers: IdempotencyHeaders,
        // 404 INPUT_IMAGE_NOT_FOUND, 409 UPLOAD_INCOMPLETE, 422 INPUT_PURPOSE_MISMATCH /
        // INPUT_IMAGE_SIZE_MISMATCH: the starting image or mask it names (issue 15).
        response: { 202: Generation, ...errors, 422: ErrorBody },
      },
    },
    async (req, reply) => {
      const { row, replayed } = await generations.submit(
        req.user!.id,
        req.body,
        req.headers['idempotency-key'] ?? null,
      );
      if (replayed) reply.header('idempotent-replayed', 'true');
      else metrics.generations.inc({ plan: row.priority > 0 ? 'pro' : 'free' });
      return reply.code(202).send(toGeneration(row));
    },
  );

  app.get(
    '/v1/generations',
    {
      schema: { tags: ['generations'], querystring: PageQuery, response: { 200: GenerationList, ...errors } },
    },
    async (req) => {
      const page = await generations.list(req.user!.id, {
        before: decodeCursor(req.query.cursor),
        limit: req.query.limit,
      });
      return { items: page.rows.map(toGeneration), nextCursor: page.next ? encodeCursor(page.next) : null };
    },
  );

  app.get(
    '/v1/generations/:id',
    {
      schema: { tags: ['generations'], params: IdParams, response: { 200: Generation, ...errors } },
    },
    async (req) => toGeneration(await generations.get(req.user!.id, req.params.id)),
  );

  app.post(
    '/v1/generations/:id/cancel',
    {
      schema: { tags: ['generations'], params: IdParams, response: { 200: Generation, ...errors } },
    },
    async (req) => toGeneration(await generations.cancel(req.user!.id, req.params.id)),
  );
};
export default generationRoutes;
