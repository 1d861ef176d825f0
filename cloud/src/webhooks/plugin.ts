/**
 * `webhooks`: the webhook use cases (`app.webhooks.service`) and the emitter other areas call in
 * their transactions (`app.webhooks.emitter`: generations for usage.threshold, billing for
 * plan.changed). Delivery jobs go through the API's own pg-boss producer.
 */
import fp from 'fastify-plugin';
import { PgBossJobQueue } from '../queue/pg-boss-job-queue.ts';
import { createWebhookEmitter, pgBossWebhookJobs, type WebhookEmitter, type WebhookJobs } from './emitter.ts';
import { createWebhookService, type WebhookService } from './service.ts';
import type { Resolver } from './ssrf.ts';
import type { WebhooksConfig } from './webhooks-config.ts';

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: { service: WebhookService; emitter: WebhookEmitter };
  }
}

export interface WebhooksPluginOptions {
  config: WebhooksConfig;
  /** Default: pg-boss through app.queue (a PgBossJobQueue). */
  jobs?: WebhookJobs | undefined;
  resolve?: Resolver | undefined;
}

export default fp<WebhooksPluginOptions>(
  async (app, opts) => {
    const jobs =
      opts.jobs ?? (app.queue instanceof PgBossJobQueue ? pgBossWebhookJobs(app.queue.boss, opts.config) : null);
    if (!jobs) throw new Error('webhooks need a pg-boss queue (PgBossJobQueue) or AppDeps.webhookJobs');
    const emitter = createWebhookEmitter(jobs);
    app.decorate('webhooks', {
      emitter,
      service: createWebhookService({
        pool: app.db.app,
        config: opts.config,
        emitter,
        ...(opts.resolve ? { resolve: opts.resolve } : {}),
      }),
    });
  },
  { name: 'webhooks', fastify: '5.x', dependencies: ['db', 'queue'] },
);
