/**
 * Uploads of local images into the cloud gallery (issue 13): presigned PUTs for server-built keys,
 * then completion once the server has seen the objects. The user comes from the verified token;
 * no key, prefix or user id is taken from the body. The batch routes (decision 0146) run the same
 * service as the single-item ones, so an item of a batch is answered as the single route would.
 */
import {
  CompleteUploadsBody,
  CompleteUploadsResponse,
  CreateUploadBody,
  CreateUploadsBody,
  CreateUploadsResponse,
  ErrorBody,
  Image,
  UploadIdParams,
  UploadResponse,
} from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ObjectStore } from '../../storage/object-store.ts';
import { createUploadService } from '../../sync/uploads.ts';

export interface UploadRouteOptions {
  /** Default: the app's object store (app.objectStore). */
  store?: ObjectStore | undefined;
  /** Unit: seconds a presigned URL stays valid (at most 900). Default: config.gen.s3.presignSeconds. */
  presignSeconds?: number | undefined;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody, 503: ErrorBody };

const uploadRoutes: FastifyPluginAsyncZod<UploadRouteOptions> = async (app, opts) => {
  const uploads = createUploadService({
    pool: app.db.app,
    store: opts.store ?? app.objectStore,
    upgradeUrl: app.config.api.upgradeUrl,
    presignSeconds: opts.presignSeconds ?? app.config.gen.s3.presignSeconds,
  });

  app.post(
    '/v1/uploads',
    {
      config: { scope: 'gallery:write' },
      schema: {
        tags: ['sync'],
        summary: 'Reserve an upload of a local image: presigned PUTs, or the existing image with the same sha256',
        body: CreateUploadBody,
        response: { 200: UploadResponse, 201: UploadResponse, 413: ErrorBody, ...errors },
      },
    },
    async (req, reply) => {
      const out = await uploads.create(req.user!.id, req.body);
      return reply.code(out.status === 'pending' ? 201 : 200).send(out);
    },
  );

  app.post(
    '/v1/uploads/batch',
    {
      config: { scope: 'gallery:write' },
      schema: {
        tags: ['sync'],
        summary:
          'Reserve uploads of up to 100 local images in one call: per item presigned PUTs, the existing image, or refused (QUOTA_STORAGE_EXCEEDED)',
        body: CreateUploadsBody,
        response: { 200: CreateUploadsResponse, ...errors },
      },
    },
    async (req) => ({ results: await uploads.reserve(req.user!.id, req.body.items) }),
  );

  app.post(
    '/v1/uploads/complete',
    {
      config: { scope: 'gallery:write' },
      schema: {
        tags: ['sync'],
        summary:
          'Record up to 100 uploaded images in one call; per item, the image or why not (NOT_FOUND, UPLOAD_INCOMPLETE, UPLOAD_SIZE_MISMATCH)',
        body: CompleteUploadsBody,
        response: { 200: CompleteUploadsResponse, ...errors },
      },
    },
    async (req) => ({ results: await uploads.completeMany(req.user!.id, req.body.ids) }),
  );

  app.post(
    '/v1/uploads/:id/complete',
    {
      config: { scope: 'gallery:write' },
      schema: {
        tags: ['sync'],
        summary: 'Record the uploaded image once both objects exist with the declared sizes',
        params: UploadIdParams,
        response: { 200: Image, 409: ErrorBody, 422: ErrorBody, ...errors },
      },
    },
    async (req) => uploads.complete(req.user!.id, req.params.id),
  );
};
export default uploadRoutes;
