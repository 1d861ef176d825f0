import {
  AppError,
  CLIENT_HEADER,
  CreateGenerationBody,
  ErrorBody,
  Generation,
  GenerationIdSchema,
  GenerationList,
  PageQuery,
  GenerationIdParams,
  type UsageSource,
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
  /** `desktop/<version>` from the Atelier app; the usage chart counts anything else as API (decision 0180). */
  [CLIENT_HEADER]: z.string().max(100).optional(),
});
/**
 * The usage chart's split (decision 0180): the desktop app says so in a header; anything else
 * (curl, scripts, API keys) is 'api'. Display only — a client that lies moves its own bars, not its quota.
 */
const generationSource = (header: string | string[] | undefined, user: object | null | undefined): UsageSource => {
  // A request made with an API key (issue 16: `req.user.apiKey` is set) is automation,
  // whatever header it sends. Read loosely so this holds before and after the keys work lands.
  if ((user as { apiKey?: unknown } | null | undefined)?.apiKey) return 'api';
  return typeof header === 'string' && /^desktop(\/|$)/.test(header) ? 'desktop' : 'api';
};

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
      config: { scope: 'generate' },
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
        generationSource(req.headers[CLIENT_HEADER], req.user),
      );
      if (replayed) reply.header('idempotent-replayed', 'true');
      else metrics.generations.inc({ plan: row.priority > 0 ? 'pro' : 'free' });
      return reply.code(202).send(toGeneration(row));
    },
  );

  app.get(
    '/v1/generations',
    {
      config: { scope: 'generate' },
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
      config: { scope: 'generate' },
      schema: { tags: ['generations'], params: IdParams, response: { 200: Generation, ...errors } },
    },
    async (req) => toGeneration(await generations.get(req.user!.id, req.params.id)),
  );

  app.post(
    '/v1/generations/:id/cancel',
    {
      config: { scope: 'generate' },
      schema: { tags: ['generations'], params: IdParams, response: { 200: Generation, ...errors } },
    },
    async (req) => toGeneration(await generations.cancel(req.user!.id, req.params.id)),
  );
};
export default generationRoutes;
