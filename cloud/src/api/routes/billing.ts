/**
 * Billing over HTTP: start a Checkout, open the Customer Portal, read the own subscription, the
 * https page Stripe returns the browser to (it sends it on to the desktop's deep link), and the
 * Stripe webhook. Without Stripe keys every one of them answers 503 BILLING_DISABLED. The service
 * is `app.billing` (billing/plugin.ts); these handlers only call it.
 */
import { AppError, CheckoutBody, ErrorBody, PLAN_IDS, PLANS, PlanId, UrlResponse } from '@atelier/common';
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { RETURN_STATUSES, type BillingService } from '../../billing/billing-service.ts';

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  429: ErrorBody,
  502: ErrorBody,
  503: ErrorBody,
};
const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[A-Za-z0-9_-]{8,100}$/, 'Idempotency-Key must be 8–100 letters, digits, - or _')
    .optional(),
});

export const BillingState = z.object({
  plan: PlanId,
  /** Stripe's subscription status, or null when the user never subscribed. */
  status: z.string().nullable(),
  cancelAtPeriodEnd: z.boolean(),
  currentPeriodEnd: z.string().datetime({ offset: true }).nullable(),
  /** While a payment is retried: Pro stays until then. */
  graceUntil: z.string().datetime({ offset: true }).nullable(),
  /** Whether the Customer Portal can be opened. */
  hasCustomer: z.boolean(),
});

const disabled = () =>
  new AppError('BILLING_DISABLED', 'billing is off: STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, STRIPE_PRICE_PRO unset', {
    userMessage:
      'Billing is not configured on this server. An operator enables it by setting STRIPE_SECRET_KEY, ' +
      'STRIPE_WEBHOOK_SECRET and STRIPE_PRICE_PRO (see docs/BILLING.md); until then plans are set with ' +
      'the admin CLI (`npm run admin -- --help`).',
  });

const MESSAGES: Record<(typeof RETURN_STATUSES)[number], string> = {
  success: 'Thank you! Your upgrade is confirmed in Atelier as soon as Stripe notifies us — usually within seconds.',
  cancel: 'Checkout was canceled. Nothing was charged.',
  portal: 'Your billing settings are saved.',
};

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Where `upgradeUrl` (QUOTA_EXCEEDED, PLAN_REQUIRED) points: a page a person can open in any browser. */
function upgradePage(): string {
  const row = (p: (typeof PLANS)[keyof typeof PLANS]) =>
    `<tr><th scope="row">${escapeHtml(p.name)}</th><td>${p.monthlyImages.toLocaleString('en-US')} cloud images per month</td>` +
    `<td>up to ${p.maxResolution} px, ${p.maxCount} per batch, ${p.concurrentJobs} at once</td>` +
    `<td>${p.priceCents === 0 ? 'free' : `$${(p.priceCents / 100).toFixed(2)} per month`}</td></tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Upgrade to Atelier Pro</title>
<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.4rem .8rem;border-bottom:1px solid #ddd;text-align:left}</style>
</head><body>
<h1>Upgrade to Atelier Pro</h1>
<p>Generations on your own computer never count. Cloud generations count against your plan:</p>
<table>${PLAN_IDS.map((id) => row(PLANS[id])).join('')}</table>
<p>To upgrade, open Atelier, go to <strong>Account</strong> and choose <strong>Upgrade</strong>. Payment is handled by
Stripe in your browser, and Pro applies as soon as Stripe confirms it.</p>
</body></html>`;
}

function returnPage(status: (typeof RETURN_STATUSES)[number]): string {
  const target = `atelier://billing/return?status=${status}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="0;url=${target}">
<title>Atelier</title>
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}a{color:#5b3df5}</style>
</head><body>
<h1>Back to Atelier</h1>
<p>${MESSAGES[status]}</p>
<p><a href="${target}">Open Atelier</a> if it did not open by itself. You can close this tab.</p>
</body></html>`;
}

/** The signed-in user's billing: checkout, portal, subscription state (inside the authenticated scope). */
const billingRoutes: FastifyPluginAsyncZod = async (app) => {
  const need = (): BillingService => {
    if (!app.billing) throw disabled();
    return app.billing;
  };

  app.post(
    '/v1/billing/checkout',
    {
      schema: {
        tags: ['billing'],
        // The desktop may POST without a body: Pro is the only plan to buy.
        body: CheckoutBody.nullish(),
        headers: IdempotencyHeaders,
        response: { 200: UrlResponse, ...errors },
      },
    },
    async (req) => {
      const key = req.headers['idempotency-key'];
      return need().startCheckout({ id: req.user!.id }, typeof key === 'string' ? { idempotencyKey: key } : {});
    },
  );

  app.post(
    '/v1/billing/portal',
    { schema: { tags: ['billing'], response: { 200: UrlResponse, ...errors } } },
    async (req) => need().openPortal(req.user!.id),
  );

  app.get(
    '/v1/billing/subscription',
    { schema: { tags: ['billing'], response: { 200: BillingState, ...errors } } },
    async (req) => need().subscriptionState(req.user!.id),
  );
};

/**
 * Public billing pages and the Stripe webhook (outside the authenticated scope). The webhook needs
 * the exact bytes Stripe signed, so it lives in its own encapsulated context whose only
 * content-type parser keeps the raw buffer; every other route keeps JSON parsing.
 */
export const billingPublicRoutes: FastifyPluginAsyncZod<{ webhookBodyBytes: number }> = async (app, opts) => {
  const need = (): BillingService => {
    if (!app.billing) throw disabled();
    return app.billing;
  };

  // The page `upgradeUrl` points at (quota and plan errors): public, and served whether or not
  // billing is on, since it only explains the plans and where to upgrade.
  app.get(
    '/v1/billing/upgrade',
    {
      config: { auth: false },
      schema: {
        tags: ['billing'],
        security: [],
        response: { 200: z.string().describe('An HTML page explaining the plans and how to upgrade') },
      },
    },
    async (_req, reply) =>
      reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'public, max-age=300')
        .header(
          'content-security-policy',
          "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        )
        .send(upgradePage()),
  );

  // Stripe sends the browser here after Checkout or the portal; it carries no authority (the
  // plan only ever changes through the signed webhook) and only sends the browser on.
  app.get(
    '/v1/billing/return',
    {
      config: { auth: false },
      schema: {
        tags: ['billing'],
        security: [],
        querystring: z.object({ status: z.enum(RETURN_STATUSES), session_id: z.string().max(255).optional() }),
        // 200 is an HTML page (sent as a string with its own content type, never serialized).
        response: {
          200: z.string().describe('An HTML page that sends the browser on to the app'),
          400: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      need();
      return reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .header(
          'content-security-policy',
          "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        )
        .send(returnPage(req.query.status));
    },
  );

  await app.register(async (raw: FastifyInstance) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.webhookBodyBytes }, (_req, body, done) =>
      done(null, body),
    );
    raw.post('/v1/webhooks/stripe', { config: { auth: false }, schema: { hide: true } }, async (req, reply) => {
      const svc = need();
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const sig = req.headers['stripe-signature'];
      const outcome = await svc.handleWebhook(body, typeof sig === 'string' ? sig : undefined);
      return reply.code(200).send({ received: true, outcome });
    });
  });
};

export default billingRoutes;
