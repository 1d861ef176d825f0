// StripeBilling through the real `stripe` SDK against the local HTTP peer: the exact requests it
// sends, how it reads current-API objects, how it maps Stripe's failures, and webhook verification.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '@atelier/common/errors';
import { StripeBilling } from '../src/billing/stripe-billing.ts';
import {
  PEER_SECRET_KEY,
  StripePeer,
  checkoutSessionObject,
  eventObject,
  invoiceObject,
  signWebhook,
  subscriptionObject,
} from './support/stripe-peer.ts';

const WHSEC = 'whsec_test_billing_stripe';
let peer: StripePeer;
let billing: StripeBilling;

beforeAll(async () => {
  peer = await StripePeer.start();
  billing = new StripeBilling({
    secretKey: PEER_SECRET_KEY,
    webhookSecret: WHSEC,
    proPriceId: 'price_pro_monthly',
    api: peer.sdkOptions,
    maxNetworkRetries: 1,
  });
});
afterAll(() => peer.close());
beforeEach(() => peer.heal());

describe('requests', () => {
  it('creates the customer with metadata userId and a per-user idempotency key', async () => {
    const { customerId } = await billing.createCustomer({ userId: 'user-a', email: 'a@example.com' });
    const [req] = peer.sent('POST', '/v1/customers').slice(-1);
    expect(req?.form).toMatchObject({ 'metadata[userId]': 'user-a', email: 'a@example.com' });
    expect(req?.headers['idempotency-key']).toBe('atelier-customer-user-a');
    expect(req?.headers['stripe-version']).toMatch(/^\d{4}-\d{2}-\d{2}/);
    // A retry inside Stripe's idempotency window gets the same customer, not a second one.
    const again = await billing.createCustomer({ userId: 'user-a', email: 'a@example.com' });
    expect(again.customerId).toBe(customerId);
    expect(
      [...peer.customers.values()].filter((c) => (c.metadata as { userId: string }).userId === 'user-a'),
    ).toHaveLength(1);
  });

  it('creates a subscription-mode Checkout Session with price, customer, client_reference_id, URLs and key', async () => {
    const { customerId } = await billing.createCustomer({ userId: 'user-b', email: null });
    const session = await billing.createCheckoutSession({
      customerId,
      userId: 'user-b',
      successUrl: 'https://api.example/v1/billing/return?status=success',
      cancelUrl: 'https://api.example/v1/billing/return?status=cancel',
      idempotencyKey: 'checkout-key-1',
    });
    expect(session.url).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/);
    const [req] = peer.sent('POST', '/v1/checkout/sessions').slice(-1);
    expect(req?.form).toEqual({
      mode: 'subscription',
      customer: customerId,
      client_reference_id: 'user-b',
      'line_items[0][price]': 'price_pro_monthly',
      'line_items[0][quantity]': '1',
      success_url: 'https://api.example/v1/billing/return?status=success',
      cancel_url: 'https://api.example/v1/billing/return?status=cancel',
      'subscription_data[metadata][userId]': 'user-b',
      'metadata[userId]': 'user-b',
    });
    expect(req?.headers['idempotency-key']).toBe('checkout-key-1');
    expect(req?.headers.authorization).toBe(`Bearer ${PEER_SECRET_KEY}`);
  });

  it('creates a portal session for the customer with the return URL', async () => {
    const { customerId } = await billing.createCustomer({ userId: 'user-c', email: null });
    const { url } = await billing.createPortalSession({ customerId, returnUrl: 'https://api.example/r' });
    expect(url).toMatch(/^https:\/\/billing\.stripe\.com\//);
    expect(peer.sent('POST', '/v1/billing_portal/sessions').at(-1)?.form).toEqual({
      customer: customerId,
      return_url: 'https://api.example/r',
    });
  });

  it('reads a subscription: status, price and the period from its items; missing → null', async () => {
    const start = new Date('2026-11-14T00:00:00Z');
    const end = new Date('2026-12-14T00:00:00Z');
    const sub = peer.putSubscription({
      customer: 'cus_x',
      status: 'past_due',
      priceId: 'price_pro_monthly',
      periodStart: start,
      periodEnd: end,
      cancelAtPeriodEnd: true,
    });
    expect(await billing.getSubscription(sub.id as string)).toEqual({
      id: sub.id,
      customerId: 'cus_x',
      status: 'past_due',
      priceIds: ['price_pro_monthly'],
      cancelAtPeriodEnd: true,
      cancelAt: end,
      currentPeriodStart: start,
      currentPeriodEnd: end,
    });
    expect(await billing.getSubscription('sub_missing')).toBeNull();
  });
});

describe('failures', () => {
  const checkout = (customerId: string) =>
    billing.createCheckoutSession({
      customerId,
      userId: 'user-f',
      successUrl: 'https://x.example/s',
      cancelUrl: 'https://x.example/c',
      idempotencyKey: `k-${Math.random()}`,
    });
  const failure = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      return e;
    }
    throw new Error('expected a failure');
  };

  it('card declined → BILLING_UNAVAILABLE, not retryable, with Stripe’s decline message', async () => {
    const { customerId } = await billing.createCustomer({ userId: 'user-f', email: null });
    peer.fail('card_declined', { path: /^\/v1\/checkout\/sessions$/ });
    const e = await failure(checkout(customerId));
    expect(AppError.is(e, 'BILLING_UNAVAILABLE')).toBe(true);
    expect(e).toMatchObject({ status: 502, retryable: false, details: { reason: 'card_declined' } });
    expect((e as AppError).userMessage).toContain('Your card was declined');
  });

  it('rate limited (429) → BILLING_UNAVAILABLE, retryable', async () => {
    const { customerId } = await billing.createCustomer({ userId: 'user-f', email: null });
    peer.fail('rate_limited', { path: /^\/v1\/checkout\/sessions$/ });
    const e = await failure(checkout(customerId));
    expect(e).toMatchObject({
      code: 'BILLING_UNAVAILABLE',
      status: 502,
      retryable: true,
      details: { reason: 'rate_limited' },
    });
  });

  it('network down → BILLING_UNAVAILABLE after the SDK retried with the same idempotency key', async () => {
    const { customerId } = await billing.createCustomer({ userId: 'user-f', email: null });
    const before = peer.sent('POST', '/v1/checkout/sessions').length;
    peer.fail('network', { path: /^\/v1\/checkout\/sessions$/ });
    const e = await failure(checkout(customerId));
    expect(e).toMatchObject({ code: 'BILLING_UNAVAILABLE', details: { reason: 'network' } });
    const tries = peer.sent('POST', '/v1/checkout/sessions').slice(before);
    expect(tries.length).toBeGreaterThanOrEqual(2);
    expect(new Set(tries.map((r) => r.headers['idempotency-key'])).size).toBe(1);
  });

  it('a 5xx that persists → BILLING_UNAVAILABLE; one that clears is retried to success', async () => {
    peer.fail('server_error', { path: /^\/v1\/subscriptions\// });
    const e = await failure(billing.getSubscription('sub_any'));
    expect(e).toMatchObject({ code: 'BILLING_UNAVAILABLE', details: { reason: 'provider_error' } });
    peer.heal();
    const sub = peer.putSubscription({
      customer: 'cus_y',
      status: 'active',
      priceId: 'price_pro_monthly',
      periodStart: new Date(),
      periodEnd: new Date(Date.now() + 86_400_000),
    });
    peer.fail('server_error', { path: /^\/v1\/subscriptions\// }, 1);
    expect((await billing.getSubscription(sub.id as string))?.status).toBe('active');
  });

  it('a wrong secret key is our misconfiguration → INTERNAL', async () => {
    const wrong = new StripeBilling({
      secretKey: 'sk_test_wrong',
      webhookSecret: WHSEC,
      proPriceId: 'p',
      api: peer.sdkOptions,
    });
    const e = await failure(wrong.createCustomer({ userId: 'u', email: null }));
    expect(e).toMatchObject({ code: 'INTERNAL' });
  });
});

describe('webhook verification', () => {
  const now = new Date('2026-11-20T12:00:00Z');
  const sub = subscriptionObject({
    id: 'sub_w',
    customer: 'cus_w',
    status: 'active',
    priceId: 'price_pro_monthly',
    periodStart: now,
    periodEnd: now,
  });

  it('accepts a correctly signed event and reduces it to ids', () => {
    const evt = eventObject('customer.subscription.updated', sub, { id: 'evt_1', created: now });
    const { payload, headers } = signWebhook(evt, WHSEC, { timestamp: now });
    const r = billing.verifyWebhook(Buffer.from(payload), headers['stripe-signature'], now);
    expect(r).toEqual({
      ok: true,
      value: {
        id: 'evt_1',
        type: 'customer.subscription.updated',
        created: now,
        livemode: false,
        subscriptionId: 'sub_w',
        customerId: 'cus_w',
        clientReferenceId: null,
      },
    });
  });

  it('reads the subscription of invoices (parent.subscription_details) and checkout sessions', () => {
    const inv = eventObject(
      'invoice.payment_failed',
      invoiceObject({ customer: 'cus_w', subscription: 'sub_w', status: 'open' }),
    );
    const cs = eventObject(
      'checkout.session.completed',
      checkoutSessionObject({ customer: 'cus_w', subscription: 'sub_w', clientReferenceId: 'user-w' }),
    );
    for (const [evt, ref] of [
      [inv, null],
      [cs, 'user-w'],
    ] as const) {
      const { payload, headers } = signWebhook(evt, WHSEC, { timestamp: now });
      const r = billing.verifyWebhook(Buffer.from(payload), headers['stripe-signature'], now);
      expect(r.ok && r.value).toMatchObject({ subscriptionId: 'sub_w', customerId: 'cus_w', clientReferenceId: ref });
    }
  });

  it('rejects a bad signature, a changed body, a stale or future timestamp, and a missing header', () => {
    const evt = eventObject('customer.subscription.updated', sub);
    const good = signWebhook(evt, WHSEC, { timestamp: now });
    const forged = signWebhook(evt, 'whsec_someone_else', { timestamp: now });
    const stale = signWebhook(evt, WHSEC, { timestamp: new Date(now.getTime() - 301_000) });
    const future = signWebhook(evt, WHSEC, { timestamp: new Date(now.getTime() + 600_000) });
    const cases: Array<[string, string | undefined]> = [
      [good.payload, forged.headers['stripe-signature']],
      [good.payload.replace('"active"', '"canceled"'), good.headers['stripe-signature']],
      [stale.payload, stale.headers['stripe-signature']],
      [future.payload, future.headers['stripe-signature']],
      [good.payload, undefined],
    ];
    for (const [payload, sig] of cases) {
      const r = billing.verifyWebhook(Buffer.from(payload), sig, now);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error.code).toBe('WEBHOOK_SIGNATURE_INVALID');
    }
  });
});
