/**
 * Starting images and masks for cloud generations (issue 15): a presigned PUT for a server-built
 * key, completion once the server has checked the bytes, and the input's record. The user comes
 * from the verified token; no key, prefix or user id is taken from the body.
 */
import { CloudInput, CreateInputBody, CreateInputResponse, ErrorBody, InputIdParams } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createInputService } from '../../inputs/service.ts';
import type { ObjectStore } from '../../storage/object-store.ts';

export interface InputRouteOptions {
  /** Default: the app's object store (app.objectStore). */
  store?: ObjectStore | undefined;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 410: ErrorBody, 429: ErrorBody, 503: ErrorBody };

const inputRoutes: FastifyPluginAsyncZod<InputRouteOptions> = async (app, opts) => {
  const inputs = createInputService({
    pool: app.db.app,
    store: opts.store ?? app.objectStore,
    presignSeconds: app.config.gen.s3.presignSeconds,
    retentionSeconds: app.config.gen.worker.inputRetentionSeconds,
  });

  app.post(
    '/v1/inputs',
    {
      config: { scope: 'generate' },
      schema: {
        tags: ['inputs'],
        summary: 'Reserve a starting image or mask: a presigned PUT for its server-built key',
        description:
          'Type (PNG/JPEG), size and sides are checked before anything is reserved: 415 INPUT_IMAGE_UNSUPPORTED_TYPE, 413 INPUT_TOO_LARGE, 422 INPUT_DIMENSIONS_INVALID; 429 INPUT_COUNT_EXCEEDED past MAX_LIVE_INPUTS held at once.',
        body: CreateInputBody,
        response: { 201: CreateInputResponse, 413: ErrorBody, 415: ErrorBody, 422: ErrorBody, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await inputs.create(req.user!.id, req.body)),
  );

  app.post(
    '/v1/inputs/:id/complete',
    {
      config: { scope: 'generate' },
      schema: {
        tags: ['inputs'],
        summary: 'Mark an input ready once its object exists with the declared size, hash, type and sides',
        description:
          '409 UPLOAD_INCOMPLETE (not uploaded yet); 422 UPLOAD_SIZE_MISMATCH, INPUT_CHECKSUM_MISMATCH, INPUT_IMAGE_UNREADABLE or INPUT_DIMENSIONS_MISMATCH and 415 INPUT_IMAGE_UNSUPPORTED_TYPE remove the object (upload again).',
        params: InputIdParams,
        response: { 200: CloudInput, 409: ErrorBody, 415: ErrorBody, 422: ErrorBody, ...errors },
      },
    },
    async (req) => inputs.complete(req.user!.id, req.params.id),
  );

  app.get(
    '/v1/inputs/:id',
    {
      config: { scope: 'generate' },
      schema: {
        tags: ['inputs'],
        summary: 'One of your inputs (404 for an id that is not yours)',
        params: InputIdParams,
        response: { 200: CloudInput, ...errors },
      },
    },
    async (req) => inputs.get(req.user!.id, req.params.id),
  );
};
export default inputRoutes;
