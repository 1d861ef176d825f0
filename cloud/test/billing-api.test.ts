// Billing over HTTP: the real app (auth hook, error mapping, raw-body webhook route) with the real
// stripe SDK pointed at the local peer through config, users from cognito-local.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CloudEvent } from '@atelier/common';
import { auth, buildTestApp, createTestDatabase, createTestUser } from './support/index.ts';
import type { TestApp, TestUser } from './support/index.ts';
import { PEER_SECRET_KEY, StripePeer, eventObject, signWebhook } from './support/stripe-peer.ts';

const WHSEC = 'whsec_billing_api_test';
const PRICE = 'price_pro_monthly';
const DAY = 86_400_000;

let peer: StripePeer;
let t: TestApp;
let off: TestApp;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  peer = await StripePeer.start();
  const db = await createTestDatabase({
    STRIPE_SECRET_KEY: PEER_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET: WHSEC,
    STRIPE_PRICE_PRO: PRICE,
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: String(peer.port),
    STRIPE_API_PROTOCOL: 'http',
    PUBLIC_API_URL: 'https://api.atelier.test',
  });
  t = await buildTestApp({ db });
  off = await buildTestApp({ db: await createTestDatabase() });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
});

afterAll(async () => {
  await t?.close();
  await off?.close();
  await peer?.close();
});

const post = (app: TestApp, url: string, user?: TestUser, body?: unknown, headers: Record<string, string> = {}) =>
  app.app.inject({
    method: 'POST',
    url,
    headers: { ...(user ? auth(user) : {}), ...headers },
    ...(body === undefined ? {} : { payload: body as object }),
  });

function webhook(
  app: TestApp,
  type: string,
  object: Record<string, unknown>,
  opts: { secret?: string; at?: Date } = {},
) {
  const { payload, headers } = signWebhook(eventObject(type, object), opts.secret ?? WHSEC, {
    timestamp: opts.at ?? new Date(),
  });
  return { payload, send: () => app.app.inject({ method: 'POST', url: '/v1/webhooks/stripe', headers, payload }) };
}

describe('billing off (no Stripe keys)', () => {
  it('answers 503 BILLING_DISABLED everywhere, saying how to enable it', async () => {
    const responses = await Promise.all([
      post(off, '/v1/billing/checkout', alice, {}),
      post(off, '/v1/billing/portal', alice),
      off.app.inject({ method: 'GET', url: '/v1/billing/subscription', headers: auth(alice) }),
      off.app.inject({ method: 'GET', url: '/v1/billing/return?status=success' }),
      webhook(off, 'customer.subscription.created', { id: 'sub_1', object: 'subscription' }).send(),
    ]);
    for (const r of responses) {
      expect(r.statusCode).toBe(503);
      expect(r.json().error.code).toBe('BILLING_DISABLED');
      expect(r.json().error.message).toMatch(/STRIPE_SECRET_KEY.*STRIPE_WEBHOOK_SECRET.*STRIPE_PRICE_PRO/);
    }
  });
});

describe('checkout and portal', () => {
  it('needs a signed-in user; nothing reaches Stripe otherwise', async () => {
    const before = peer.requests.length;
    for (const r of [
      await post(t, '/v1/billing/checkout', undefined, {}),
      await post(t, '/v1/billing/portal'),
      await t.app.inject({ method: 'GET', url: '/v1/billing/subscription' }),
      await post(t, '/v1/billing/checkout', undefined, {}, { authorization: 'Bearer not-a-token' }),
    ])
      expect(r.statusCode).toBe(401);
    expect(peer.requests.length).toBe(before);
  });

  it('creates the session for the caller only: the user id comes from the token, never the body', async () => {
    const smuggled = await post(t, '/v1/billing/checkout', alice, { plan: 'pro', userId: bob.sub });
    expect(smuggled.statusCode).toBe(400);
    expect(smuggled.json().error.code).toBe('VALIDATION_FAILED');

    const r = await post(
      t,
      '/v1/billing/checkout',
      alice,
      { plan: 'pro' },
      { 'idempotency-key': 'upgrade-click-0001' },
    );
    expect(r.statusCode).toBe(200);
    expect(r.json().url).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/);
    const customer = peer.sent('POST', '/v1/customers').at(-1)!;
    expect(customer.form['metadata[userId]']).toBe(alice.sub);
    expect(customer.form.email).toBe(alice.email);
    const session = peer.sent('POST', '/v1/checkout/sessions').at(-1)!;
    expect(session.form).toMatchObject({
      mode: 'subscription',
      client_reference_id: alice.sub,
      'line_items[0][price]': PRICE,
      success_url: 'https://api.atelier.test/v1/billing/return?status=success',
      cancel_url: 'https://api.atelier.test/v1/billing/return?status=cancel',
    });
    expect(session.headers['idempotency-key']).toBe(`atelier-checkout-${alice.sub}-upgrade-click-0001`);

    const noBody = await post(t, '/v1/billing/checkout', bob);
    expect(noBody.statusCode).toBe(200);
    expect(peer.sent('POST', '/v1/checkout/sessions').at(-1)!.form.client_reference_id).toBe(bob.sub);
    expect(peer.sent('POST', '/v1/checkout/sessions').at(-1)!.form.customer).not.toBe(session.form.customer);
  });

  it('reads and manages only the caller’s own billing', async () => {
    const carol = await createTestUser();
    const mine = await t.app.inject({ method: 'GET', url: '/v1/billing/subscription', headers: auth(carol) });
    expect(mine.json()).toEqual({
      plan: 'free',
      status: null,
      cancelAtPeriodEnd: false,
      currentPeriodEnd: null,
      graceUntil: null,
      hasCustomer: false,
    });
    // Carol has no customer: she gets 404, not Alice's portal.
    const portal = await post(t, '/v1/billing/portal', carol);
    expect(portal.statusCode).toBe(404);
    expect(portal.json().error.code).toBe('BILLING_NO_CUSTOMER');

    const alicePortal = await post(t, '/v1/billing/portal', alice);
    expect(alicePortal.statusCode).toBe(200);
    const aliceCustomer = peer
      .sent('POST', '/v1/checkout/sessions')
      .find((r) => r.form.client_reference_id === alice.sub)!.form.customer;
    expect(peer.sent('POST', '/v1/billing_portal/sessions').at(-1)!.form.customer).toBe(aliceCustomer);
  });

  it('Stripe down → 502 BILLING_UNAVAILABLE', async () => {
    const dave = await createTestUser();
    peer.fail('network', { path: /^\/v1\/customers$/ });
    try {
      const r = await post(t, '/v1/billing/checkout', dave, {});
      expect(r.statusCode).toBe(502);
      expect(r.json().error.code).toBe('BILLING_UNAVAILABLE');
      const state = await t.app.inject({ method: 'GET', url: '/v1/billing/subscription', headers: auth(dave) });
      expect(state.json().hasCustomer).toBe(false);
    } finally {
      peer.heal();
    }
  });
});

describe('contract', () => {
  it('documents the billing routes in the OpenAPI document, but not the webhook', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/billing/checkout',
        '/v1/billing/portal',
        '/v1/billing/subscription',
        '/v1/billing/return',
      ]),
    );
    expect(doc.paths).not.toHaveProperty('/v1/webhooks/stripe');
  });
});

describe('return page', () => {
  it('sends the browser to the app and grants nothing', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/v1/billing/return?status=success&session_id=cs_test_x' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.headers['content-security-policy']).toContain("default-src 'none'");
    expect(r.body).toContain('atelier://billing/return?status=success');
    const cancel = await t.app.inject({ method: 'GET', url: '/v1/billing/return?status=cancel' });
    expect(cancel.body).toContain('atelier://billing/return?status=cancel');
    const evil = await t.app.inject({ method: 'GET', url: '/v1/billing/return?status=javascript:alert(1)' });
    expect(evil.statusCode).toBe(400);
    // Alice went through Checkout and came back: still free until Stripe says otherwise.
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', headers: auth(alice) });
    expect(me.json().plan).toBe('free');
  });
});

describe('webhook', () => {
  it('takes events larger than the API’s JSON body limit (invoices with many lines)', async () => {
    const big = {
      id: 'in_big',
      object: 'invoice',
      lines: { data: Array.from({ length: 800 }, (_, i) => ({ id: `il_${i}`, description: 'x'.repeat(100) })) },
    };
    const d = webhook(t, 'invoice.created', big);
    expect(Buffer.byteLength(d.payload)).toBeGreaterThan(t.config.api.bodyLimit);
    const r = await d.send();
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ received: true, outcome: 'ignored' });
  });

  it('verifies the raw body, applies once, tells the socket, and 409s a second checkout', async () => {
    const customer = peer.sent('POST', '/v1/checkout/sessions').find((r) => r.form.client_reference_id === alice.sub)!
      .form.customer!;
    const now = new Date();
    const sub = peer.putSubscription({
      customer,
      status: 'active',
      priceId: PRICE,
      periodStart: now,
      periodEnd: new Date(now.getTime() + 30 * DAY),
    });
    const seen: CloudEvent[] = [];
    const unsubscribe = t.events.subscribe(alice.sub, (e) => seen.push(e));

    const forged = webhook(t, 'customer.subscription.created', sub, { secret: 'whsec_forged' });
    const stale = webhook(t, 'customer.subscription.created', sub, { at: new Date(now.getTime() - 15 * 60_000) });
    for (const bad of [forged, stale]) {
      const r = await bad.send();
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toBe('WEBHOOK_SIGNATURE_INVALID');
    }
    const reformatted = webhook(t, 'customer.subscription.created', sub);
    const tampered = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks/stripe',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': signWebhook({ a: 1 }, WHSEC).headers['stripe-signature']!,
      },
      payload: reformatted.payload,
    });
    expect(tampered.statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: auth(alice) })).json().plan).toBe('free');

    const good = webhook(t, 'customer.subscription.created', sub);
    const first = await good.send();
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ received: true, outcome: 'applied' });
    const again = await good.send();
    expect(again.json()).toEqual({ received: true, outcome: 'duplicate' });

    const me = (await t.app.inject({ method: 'GET', url: '/v1/me', headers: auth(alice) })).json();
    expect(me.plan).toBe('pro');
    expect(me.usage.limit).toBe(1000);
    await vi.waitFor(() => expect(seen.map((e) => e.type)).toEqual(['plan.changed', 'usage.changed']));
    unsubscribe();

    const state = (await t.app.inject({ method: 'GET', url: '/v1/billing/subscription', headers: auth(alice) })).json();
    expect(state).toMatchObject({ plan: 'pro', status: 'active', hasCustomer: true });
    const second = await post(t, '/v1/billing/checkout', alice, {});
    expect(second.statusCode).toBe(409);
    expect(second.json().error.code).toBe('PLAN_ALREADY_ACTIVE');
    // Bob's plan did not move.
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: auth(bob) })).json().plan).toBe('free');
  });
});
