/**
 * `billing`: the billing use cases on the instance (`app.billing`), composed here from the config
 * and the pools — not inside a route plugin. null when billing is off (no Stripe keys): the
 * routes then answer 503 BILLING_DISABLED and the review sweep has nothing to do.
 */
import fp from 'fastify-plugin';
import type { BillingConfig } from './billing-config.ts';
import { createBillingService, type BillingService } from './billing-service.ts';
import { StripeBilling } from './stripe-billing.ts';
import { publishEvent } from '../events/publish.ts';
import { publishWithWebhooks } from '../webhooks/emitter.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The billing use cases, or null when billing is off (no Stripe keys). */
    billing: BillingService | null;
  }
}

export default fp<{ config: BillingConfig }>(
  async (app, { config: b }) => {
    let service: BillingService | null = null;
    if (b.enabled) {
      const systemPool = app.db.system;
      if (!systemPool) throw new Error('billing needs the system pool (role atelier_system) for its webhook');
      service = createBillingService({
        billing: new StripeBilling({
          secretKey: b.secretKey,
          webhookSecret: b.webhookSecret,
          proPriceId: b.proPriceId,
          api: b.api,
        }),
        appPool: app.db.app,
        systemPool,
        // plan.changed also goes to the user's webhooks, in the same transaction as the change.
        publish: publishWithWebhooks(publishEvent, app.webhooks.emitter),
        clock: () => app.db.now() ?? new Date(),
        graceDays: b.graceDays,
        proPriceId: b.proPriceId,
        publicApiUrl: b.publicApiUrl,
        log: app.log.child({ scope: 'billing' }),
      });
    }
    app.decorate('billing', service);
  },
  { name: 'billing', fastify: '5.x', dependencies: ['db', 'webhooks'] },
);
