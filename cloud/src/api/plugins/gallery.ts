/**
 * `gallery`: the cloud gallery's images and boards (`app.gallery`) over the object store, and the
 * model catalogue (`app.catalogue`). An object store the app made itself is closed with the app.
 */
import fp from 'fastify-plugin';
import { createModelCatalogue, type ModelCatalogue } from '../../catalogue/catalogue.ts';
import type { Config } from '../../config.ts';
import { createGalleryService, type GalleryService } from '../../db/gallery/gallery-service.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import { S3ObjectStore } from '../../storage/s3-object-store.ts';

declare module 'fastify' {
  interface FastifyInstance {
    gallery: GalleryService;
    objectStore: ObjectStore;
    catalogue: ModelCatalogue;
  }
}

export interface GalleryPluginOptions {
  config: Config;
  objectStore?: ObjectStore | undefined;
  catalogue?: ModelCatalogue | undefined;
}

export default fp<GalleryPluginOptions>(
  async (app, { config, ...opts }) => {
    const store = opts.objectStore ?? new S3ObjectStore(config.gen.s3);
    if (!opts.objectStore) app.addHook('onClose', async () => store.close());
    app.decorate('objectStore', store);
    app.decorate(
      'catalogue',
      opts.catalogue ?? createModelCatalogue(config.gen.catalogue, { modelsRoot: config.gen.modelsRoot }),
    );
    app.decorate(
      'gallery',
      createGalleryService({ pool: app.db.app, store, presignSeconds: config.gen.s3.presignSeconds }),
    );
  },
  { name: 'gallery', fastify: '5.x', dependencies: ['db'] },
);
