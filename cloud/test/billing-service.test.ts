// The billing use cases on a real Postgres (migrated, RLS on, app and system roles) and the real
// stripe SDK against the local peer: checkout, portal, webhooks, the grace sweeper.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CloudEvent } from '@atelier/common/api';
import { AppError } from '@atelier/common/errors';
import { createPool } from '../src/db/pool.ts';
import type { Pool } from '../src/db/pool.ts';
import { EventHub } from '../src/events/hub.ts';
import { publishEvent } from '../src/events/publish.ts';
import { currentUsage, reserve } from '../src/quota/usage.ts';
import type { BillingService } from '../src/billing/billing-service.ts';
import { createTestDatabase } from './support/index.ts';
import {
  checkoutSessionObject,
  eventObject,
  invoiceObject,
  peerBillingService,
  signWebhook,
  StripePeer,
  type SubscriptionInit,
} from './support/stripe-peer.ts';

const WHSEC = 'whsec_billing_service_test';
const PRICE = 'price_pro_monthly';
const DAY = 86_400_000;

let peer: StripePeer;
let appPool: Pool;
let systemPool: Pool;
let svc: BillingService;
let hub: EventHub;
let now: Date;
const published: Array<{ userId: string; event: CloudEvent }> = [];

beforeAll(async () => {
  peer = await StripePeer.start();
  const { config } = await createTestDatabase();
  hub = new EventHub(config.database.url);
  await hub.start();
  appPool = createPool(config, 'app', { max: 3 });
  systemPool = createPool(config, 'system', { max: 3 });
  svc = peerBillingService({ peer, webhookSecret: WHSEC, proPriceId: PRICE, appPool, systemPool, clock: () => now });
});

afterAll(async () => {
  await hub?.stop();
  await appPool?.end();
  await systemPool?.end();
  await peer?.close();
});

beforeEach(() => {
  now = new Date();
  peer.heal();
  published.length = 0;
});

async function newUser(opts: { used?: number } = {}): Promise<string> {
  const id = randomUUID();
  await systemPool.query('INSERT INTO users (id, email) VALUES ($1, $2)', [id, `${id}@example.com`]);
  hub.subscribe(id, (event) => published.push({ userId: id, event }));
  if (opts.used !== undefined) {
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    await systemPool.query(
      `INSERT INTO usage_periods (user_id, period_start, period_end, plan, used, "limit") VALUES ($1, $2, $3, 'free', $4, 100)`,
      [id, start, end, opts.used],
    );
  }
  return id;
}

const row = async (userId: string) =>
  (await systemPool.query('SELECT * FROM subscriptions WHERE user_id = $1', [userId])).rows[0];
const plan = async (userId: string) =>
  (await systemPool.query<{ plan: string }>('SELECT plan FROM effective_plans WHERE user_id = $1', [userId])).rows[0]
    ?.plan;
const ledger = async (userId: string) =>
  (
    await systemPool.query('SELECT kind, amount, period_start FROM usage_ledger WHERE user_id = $1 ORDER BY id', [
      userId,
    ])
  ).rows;

/** Waits until every event committed so far reached the socket (NOTIFY keeps commit order). */
async function flushEvents(userId: string): Promise<void> {
  const marker = `flush-${randomUUID()}`;
  await publishEvent(systemPool, userId, { type: 'ready', userId: marker });
  await vi.waitFor(() =>
    expect(published.some((p) => p.event.type === 'ready' && p.event.userId === marker)).toBe(true),
  );
  published.splice(
    published.findIndex((p) => p.event.type === 'ready' && p.event.userId === marker),
    1,
  );
}

/** Checkout through the service, so the customer mapping is the real one. */
async function customerFor(userId: string): Promise<string> {
  await svc.startCheckout({ id: userId, email: null });
  return (await row(userId)).stripe_customer_id as string;
}

function deliver(type: string, object: Record<string, unknown>, opts: { id?: string; created?: Date } = {}) {
  const evt = eventObject(type, object, { created: opts.created ?? now, ...(opts.id ? { id: opts.id } : {}) });
  const { payload, headers } = signWebhook(evt, WHSEC, { timestamp: now });
  return { id: evt.id as string, send: () => svc.handleWebhook(Buffer.from(payload), headers['stripe-signature']) };
}

/** A subscription to the Pro price for the month starting now, as Stripe would hold it (status active unless overridden). */
function activeMonthly(customer: string, overrides: Partial<SubscriptionInit> = {}) {
  return peer.putSubscription({
    customer,
    status: 'active',
    priceId: PRICE,
    periodStart: now,
    periodEnd: new Date(now.getTime() + 30 * DAY),
    ...overrides,
  });
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a failure');
}

describe('checkout', () => {
  it('sends exactly the Checkout the issue asks for, and reuses the customer next time', async () => {
    const userId = await newUser();
    const { url } = await svc.startCheckout({ id: userId, email: 'me@example.com' }, { idempotencyKey: 'click-1' });
    expect(url).toMatch(/^https:\/\/checkout\.stripe\.com\//);
    const customer = peer.sent('POST', '/v1/customers').at(-1)!;
    expect(customer.form).toEqual({ 'metadata[userId]': userId, email: 'me@example.com' });
    const customerId = (await row(userId)).stripe_customer_id;
    expect(customerId).toMatch(/^cus_/);
    const session = peer.sent('POST', '/v1/checkout/sessions').at(-1)!;
    expect(session.form).toMatchObject({
      mode: 'subscription',
      customer: customerId,
      client_reference_id: userId,
      'line_items[0][price]': PRICE,
      'line_items[0][quantity]': '1',
      success_url: 'https://api.atelier.test/v1/billing/return?status=success',
      cancel_url: 'https://api.atelier.test/v1/billing/return?status=cancel',
    });
    expect(session.headers['idempotency-key']).toBe(`atelier-checkout-${userId}-click-1`);

    const customersBefore = peer.sent('POST', '/v1/customers').length;
    await svc.startCheckout({ id: userId, email: 'me@example.com' });
    expect(peer.sent('POST', '/v1/customers').length).toBe(customersBefore);
    expect(peer.sent('POST', '/v1/checkout/sessions').at(-1)!.form.customer).toBe(customerId);
    // Coming back from Checkout grants nothing: only a webhook can.
    expect(await plan(userId)).toBe('free');
  });

  it.each(['network', 'rate_limited', 'card_declined'] as const)(
    '%s → 502 BILLING_UNAVAILABLE with nothing stored',
    async (kind) => {
      const userId = await newUser();
      peer.fail(kind, { path: /^\/v1\/checkout\/sessions$/ });
      const e = await failure(svc.startCheckout({ id: userId, email: null }));
      expect(AppError.is(e, 'BILLING_UNAVAILABLE')).toBe(true);
      expect((e as AppError).status).toBe(502);
      expect(await row(userId)).toBeUndefined();
      expect(await plan(userId)).toBe('free');
      // The retry reuses the customer Stripe already made (idempotent per user).
      peer.heal();
      const made = peer.sent('POST', '/v1/customers').filter((r) => r.form['metadata[userId]'] === userId).length;
      await svc.startCheckout({ id: userId, email: null });
      const customers = [...peer.customers.values()].filter(
        (c) => (c.metadata as { userId?: string }).userId === userId,
      );
      expect(customers).toHaveLength(1);
      expect(made).toBeGreaterThan(0);
    },
  );

  it('network down before the customer exists → 502, nothing stored', async () => {
    const userId = await newUser();
    peer.fail('network', { path: /^\/v1\/customers$/ });
    expect(await failure(svc.startCheckout({ id: userId, email: null }))).toMatchObject({
      code: 'BILLING_UNAVAILABLE',
    });
    expect(await row(userId)).toBeUndefined();
  });

  it('already on Pro → 409 PLAN_ALREADY_ACTIVE; portal needs a customer', async () => {
    const userId = await newUser();
    expect(await failure(svc.openPortal(userId))).toMatchObject({ code: 'BILLING_NO_CUSTOMER', status: 404 });
    await systemPool.query(`INSERT INTO subscriptions (user_id, plan, status) VALUES ($1, 'pro', 'active')`, [userId]);
    expect(await failure(svc.startCheckout({ id: userId, email: null }))).toMatchObject({
      code: 'PLAN_ALREADY_ACTIVE',
      status: 409,
    });
  });

  it('opens the portal for the user’s own customer', async () => {
    const userId = await newUser();
    const customerId = await customerFor(userId);
    const { url } = await svc.openPortal(userId);
    expect(url).toMatch(/^https:\/\/billing\.stripe\.com\//);
    expect(peer.sent('POST', '/v1/billing_portal/sessions').at(-1)!.form).toEqual({
      customer: customerId,
      return_url: 'https://api.atelier.test/v1/billing/return?status=portal',
    });
  });
});

describe('webhooks', () => {
  it('upgrade mid-period: Pro at once, limit 1000, used carried over, ledger and socket told', async () => {
    const userId = await newUser({ used: 40 });
    const customer = await customerFor(userId);
    const sub = activeMonthly(customer);
    const cs = checkoutSessionObject({ customer, subscription: sub.id as string, clientReferenceId: userId });
    const delivery = deliver('checkout.session.completed', cs);
    expect(await delivery.send()).toBe('applied');
    expect(await plan(userId)).toBe('pro');
    // The subscription was re-read from Stripe, not taken from the event.
    expect(peer.sent('GET', `/v1/subscriptions/${sub.id as string}`)).toHaveLength(1);
    const usage = (
      await systemPool.query(
        'SELECT used, "limit", period_start FROM usage_periods WHERE user_id = $1 AND period_end > $2',
        [userId, now],
      )
    ).rows;
    expect(usage).toEqual([{ used: 40, limit: 1000, period_start: new Date(Math.floor(now.getTime() / 1000) * 1000) }]);
    expect(await ledger(userId)).toEqual([{ kind: 'adjust', amount: 40, period_start: usage[0].period_start }]);
    // The quota code (cloud-core) sees the same window: 40 of 1000 in the billing period.
    expect(await currentUsage(systemPool, userId)).toMatchObject({ used: 40, limit: 1000, plan: 'pro' });
    expect(await reserve(systemPool, userId, 100)).toMatchObject({ used: 140, limit: 1000 });
    await flushEvents(userId);
    // This user's events only: a previous test's user may still have a notification in flight.
    const mine = published.filter((p) => p.userId === userId);
    expect(mine.map((p) => [p.userId, p.event.type])).toEqual([
      [userId, 'plan.changed'],
      [userId, 'usage.changed'],
    ]);
    expect(mine[0]!.event).toEqual({ type: 'plan.changed', plan: 'pro' });
    expect(mine[1]!.event).toMatchObject({ type: 'usage.changed', usage: { used: 40, limit: 1000 } });

    // The same event again: one effect.
    expect(await delivery.send()).toBe('duplicate');
    expect(await ledger(userId)).toHaveLength(1);
    await flushEvents(userId);
    expect(published).toHaveLength(2);
    expect(await currentUsage(systemPool, userId)).toMatchObject({ used: 140, limit: 1000 });
    // And a different event with the same state changes nothing either.
    expect(await deliver('customer.subscription.created', sub).send()).toBe('unchanged');
    expect(await ledger(userId)).toHaveLength(1);
  });

  it('two deliveries of one event at once: one effect', async () => {
    const userId = await newUser({ used: 3 });
    const customer = await customerFor(userId);
    const sub = activeMonthly(customer);
    const d = deliver('customer.subscription.created', sub);
    const outcomes = await Promise.all([d.send(), d.send()]);
    expect(outcomes.sort()).toEqual(['applied', 'duplicate']);
    expect(await ledger(userId)).toHaveLength(1);
  });

  it('deleted before updated → ends free (the late update re-reads Stripe)', async () => {
    const userId = await newUser();
    const customer = await customerFor(userId);
    const active = activeMonthly(customer);
    expect(await deliver('customer.subscription.created', active).send()).toBe('applied');
    expect(await plan(userId)).toBe('pro');

    const canceled = activeMonthly(customer, { id: active.id as string, status: 'canceled' });
    const updated = deliver(
      'customer.subscription.updated',
      { ...active, cancel_at_period_end: true },
      {
        created: new Date(now.getTime() - 60_000),
      },
    );
    const deleted = deliver('customer.subscription.deleted', canceled);
    expect(await deleted.send()).toBe('applied');
    expect(await updated.send()).toBe('unchanged');
    expect(await plan(userId)).toBe('free');
    expect((await row(userId)).status).toBe('canceled');
    await flushEvents(userId);
    const mine = published.filter((p) => p.userId === userId && p.event.type === 'plan.changed');
    expect(mine.map((p) => p.event)).toEqual([
      { type: 'plan.changed', plan: 'pro' },
      { type: 'plan.changed', plan: 'free' },
    ]);
  });

  it('payment failed → Pro through the grace period → free when it ends', async () => {
    const userId = await newUser();
    const customer = await customerFor(userId);
    const sub = activeMonthly(customer);
    await deliver('customer.subscription.created', sub).send();
    const t0 = now;

    activeMonthly(customer, { id: sub.id as string, status: 'past_due' });
    const inv = invoiceObject({ customer, subscription: sub.id as string, status: 'open' });
    expect(await deliver('invoice.payment_failed', inv).send()).toBe('unchanged');
    expect(await plan(userId)).toBe('pro');
    const r = await row(userId);
    expect(r.status).toBe('past_due');
    expect(r.grace_until).toEqual(new Date(Math.floor(t0.getTime() / 1000) * 1000 + 7 * DAY));

    now = new Date(t0.getTime() + 6 * DAY);
    expect(await svc.reviewDue()).toBe(0);
    now = new Date(t0.getTime() + 7 * DAY + 1000);
    expect(await svc.reviewDue()).toBe(1);
    expect((await row(userId)).plan).toBe('free');
    expect(await plan(userId)).toBe('free');
    await flushEvents(userId);
    expect(published.at(-2)?.event).toEqual({ type: 'plan.changed', plan: 'free' });
    expect(published.at(-1)?.event).toMatchObject({ type: 'usage.changed', usage: { limit: 100 } });
    // A later retry of the payment that succeeds brings Pro back.
    activeMonthly(customer, { id: sub.id as string, status: 'active' });
    expect(await deliver('invoice.paid', { ...inv, status: 'paid' }).send()).toBe('applied');
    expect(await plan(userId)).toBe('pro');
  });

  it('cancel at period end keeps Pro until the period ends', async () => {
    const userId = await newUser();
    const customer = await customerFor(userId);
    const end = new Date(now.getTime() + 10 * DAY);
    const sub = activeMonthly(customer, {
      periodStart: new Date(now.getTime() - 20 * DAY),
      periodEnd: end,
      cancelAtPeriodEnd: true,
    });
    await deliver('customer.subscription.updated', sub).send();
    expect(await plan(userId)).toBe('pro');
    expect((await row(userId)).review_at).toEqual(new Date(Math.floor(end.getTime() / 1000) * 1000));
    now = new Date(end.getTime() + 1000);
    expect(await svc.reviewDue()).toBe(1);
    expect((await row(userId)).plan).toBe('free');
  });

  it('Stripe unreachable while re-reading → 502, event not recorded, redelivery applies it', async () => {
    const userId = await newUser();
    const customer = await customerFor(userId);
    const sub = activeMonthly(customer);
    const d = deliver('customer.subscription.created', sub);
    peer.fail('network', { path: /^\/v1\/subscriptions\// });
    expect(await failure(d.send())).toMatchObject({ code: 'BILLING_UNAVAILABLE' });
    expect((await systemPool.query('SELECT 1 FROM stripe_events WHERE id = $1', [d.id])).rowCount).toBe(0);
    expect(await plan(userId)).toBe('free');
    peer.heal();
    expect(await d.send()).toBe('applied');
  });

  it('bad signature and stale timestamp change nothing', async () => {
    const userId = await newUser();
    const customer = await customerFor(userId);
    const sub = activeMonthly(customer);
    const evt = eventObject('customer.subscription.created', sub);
    const forged = signWebhook(evt, 'whsec_attacker', { timestamp: now });
    const stale = signWebhook(evt, WHSEC, { timestamp: new Date(now.getTime() - 10 * 60_000) });
    for (const s of [forged, stale])
      expect(await failure(svc.handleWebhook(Buffer.from(s.payload), s.headers['stripe-signature']))).toMatchObject({
        code: 'WEBHOOK_SIGNATURE_INVALID',
        status: 400,
      });
    expect((await systemPool.query('SELECT 1 FROM stripe_events WHERE id = $1', [evt.id])).rowCount).toBe(0);
    expect(await plan(userId)).toBe('free');
  });

  it('a subscription of a customer nobody owns, or another user’s, grants nothing', async () => {
    const userId = await newUser();
    await customerFor(userId);
    const stranger = peer.putSubscription({
      customer: 'cus_stranger',
      status: 'active',
      priceId: PRICE,
      periodStart: now,
      periodEnd: new Date(now.getTime() + DAY),
    });
    expect(await deliver('customer.subscription.created', stranger).send()).toBe('unknown_customer');
    // A checkout completion naming our user but carrying someone else's customer: the customer wins.
    const cs = checkoutSessionObject({
      customer: 'cus_stranger',
      subscription: stranger.id as string,
      clientReferenceId: userId,
    });
    expect(await deliver('checkout.session.completed', cs).send()).toBe('unknown_customer');
    expect(await plan(userId)).toBe('free');
  });

  it('other event types are acknowledged and ignored', async () => {
    expect(await deliver('customer.created', { id: 'cus_x', object: 'customer' }).send()).toBe('ignored');
  });
});
