/**
 * `generations`: submit / cancel / read generations (`app.generations`). A submission reserves
 * quota, inserts the row and enqueues the job in one user transaction (service.ts).
 */
import fp from 'fastify-plugin';
import { createGenerationService, type GenerationService, type ModelResolver } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    generations: GenerationService;
  }
}

export interface GenerationsPluginOptions {
  /** Which model a request runs on a plan (throws MODEL_NOT_AVAILABLE). */
  resolveModel: ModelResolver;
  /** Sent as `upgradeUrl` in QUOTA_EXCEEDED and PLAN_REQUIRED. */
  upgradeUrl: string;
}

export default fp<GenerationsPluginOptions>(
  async (app, opts) => {
    app.decorate(
      'generations',
      createGenerationService({
        pool: app.db.app,
        queue: app.queue,
        webhooks: app.webhooks.emitter,
        resolveModel: opts.resolveModel,
        upgradeUrl: opts.upgradeUrl,
        now: app.db.now,
      }),
    );
  },
  { name: 'generations', fastify: '5.x', dependencies: ['db', 'queue', 'webhooks'] },
);
