/**
 * Issue 11, money paths: an idempotent retry gets the original answer whatever is in flight, a
 * refund follows the period that holds the charge after a plan change, a cancel charges only the
 * images delivered, and every period's ledger sums to its `used` (operator adjustments included).
 */
import { newId } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BillingService } from '../src/billing/billing-service.ts';
import { insertImages } from '../src/db/gallery/images-repository.ts';
import { withSystemTx } from '../src/db/tx.ts';
import { markRunning } from '../src/generations/repository.ts';
import { setUsage } from '../src/quota/usage.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';
import {
  checkoutSessionObject,
  eventObject,
  peerBillingService,
  signWebhook,
  StripePeer,
} from './support/stripe-peer.ts';

const WHSEC = 'whsec_harden_money';
const PRICE = 'price_pro_monthly';

let t: TestApp;
let peer: StripePeer;
let billing: BillingService;

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  peer = await StripePeer.start();
  billing = peerBillingService({
    peer,
    webhookSecret: WHSEC,
    proPriceId: PRICE,
    appPool: t.pool,
    systemPool: t.systemPool,
  });
});
afterAll(async () => {
  await t.close();
  await peer.close();
});

async function newUser(): Promise<TestUser> {
  const u = await createTestUser();
  expect((await t.app.inject({ url: '/v1/me', headers: auth(u) })).statusCode).toBe(200);
  return u;
}

const submit = (u: TestUser, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/v1/generations', headers: { ...auth(u), ...headers }, payload: body });
const cancel = (u: TestUser, id: string) =>
  t.app.inject({ method: 'POST', url: `/v1/generations/${id}/cancel`, headers: auth(u) });
const setUsed = (userId: string, used: number) => withSystemTx(t.adminPool, (tx) => setUsage(tx, userId, used));

/** Every period of the user: its `used` and what its ledger sums to. */
async function periods(userId: string) {
  const r = await t.adminPool.query<{ period_start: Date; used: number; ledger: number }>(
    `SELECT p.period_start, p.used,
            COALESCE((SELECT sum(amount)::int FROM usage_ledger l
                       WHERE l.user_id = p.user_id AND l.period_start = p.period_start), 0) AS ledger
       FROM usage_periods p WHERE p.user_id = $1 ORDER BY p.period_start`,
    [userId],
  );
  return r.rows;
}
async function expectLedgerMatches(userId: string) {
  for (const p of await periods(userId))
    expect({ period: p.period_start, sum: p.ledger }).toEqual({ period: p.period_start, sum: p.used });
}
const me = async (u: TestUser) => (await t.app.inject({ url: '/v1/me', headers: auth(u) })).json();

describe('idempotent retries under the user lock', () => {
  it('eight concurrent retries of a request that fills the quota all get its 202, charged once', async () => {
    const u = await newUser();
    await setUsed(u.sub, 96);
    const rs = await Promise.all(
      Array.from({ length: 8 }, () =>
        submit(u, { prompt: 'exactly fits', count: 4 }, { 'idempotency-key': 'fill-it-up' }),
      ),
    );
    expect(rs.map((r) => r.statusCode)).toEqual(Array(8).fill(202));
    expect(new Set(rs.map((r) => r.json().id)).size).toBe(1);
    expect((await me(u)).usage.used).toBe(100);
    await expectLedgerMatches(u.sub);
  });

  it('retries while the plan allows no more running jobs still get the original, not PLAN_REQUIRED', async () => {
    const u = await newUser();
    expect((await submit(u, { prompt: 'one' })).statusCode).toBe(202);
    // Free runs 2 at once: this request takes the last slot, its retries must not be refused.
    const rs = await Promise.all(
      Array.from({ length: 6 }, () => submit(u, { prompt: 'two' }, { 'idempotency-key': 'last-slot' })),
    );
    expect(rs.map((r) => r.statusCode)).toEqual(Array(6).fill(202));
    expect(new Set(rs.map((r) => r.json().id)).size).toBe(1);
  });
});

describe('refunds follow the period that holds the charge', () => {
  it('upgraded at 54/100, cancelling the queued job gives 50/1000, and each period’s ledger sums to used', async () => {
    const u = await newUser();
    await setUsed(u.sub, 50);
    const g = (await submit(u, { prompt: 'before the upgrade', count: 4 })).json();
    expect((await me(u)).usage).toMatchObject({ used: 54, limit: 100 });

    await billing.startCheckout({ id: u.sub, email: null });
    const customer = (
      await t.adminPool.query<{ c: string }>('SELECT stripe_customer_id AS c FROM subscriptions WHERE user_id = $1', [
        u.sub,
      ])
    ).rows[0]!.c;
    const now = new Date();
    const sub = peer.putSubscription({
      customer,
      status: 'active',
      priceId: PRICE,
      periodStart: now,
      periodEnd: new Date(now.getTime() + 30 * 86_400_000),
    });
    const evt = eventObject(
      'checkout.session.completed',
      checkoutSessionObject({ customer, subscription: sub.id as string, clientReferenceId: u.sub }),
      { created: now },
    );
    const { payload, headers } = signWebhook(evt, WHSEC, { timestamp: now });
    expect(await billing.handleWebhook(Buffer.from(payload), headers['stripe-signature'])).toBe('applied');
    expect((await me(u)).usage).toMatchObject({ used: 54, limit: 1000 });

    expect((await cancel(u, g.id)).statusCode).toBe(200);
    expect((await me(u)).usage).toMatchObject({ used: 50, limit: 1000 });
    await expectLedgerMatches(u.sub);
  });

  it('an operator set-usage below a queued charge: the refund takes back only what used holds', async () => {
    const u = await newUser();
    const g = (await submit(u, { prompt: 'then zeroed', count: 4 })).json();
    await setUsed(u.sub, 2);
    expect((await cancel(u, g.id)).statusCode).toBe(200);
    expect((await me(u)).usage.used).toBe(0);
    await expectLedgerMatches(u.sub);
  });
});

describe('cancel charges only the images delivered', () => {
  async function runningWith(u: TestUser, count: number, delivered: number) {
    const g = (await submit(u, { prompt: 'partly made', count })).json();
    expect(await markRunning(t.systemPool, g.id, 1)).not.toBeNull();
    if (delivered)
      await withSystemTx(t.systemPool, (tx) =>
        insertImages(
          tx,
          u.sub,
          Array.from({ length: delivered }, (_, i) => ({
            id: newId('img'),
            generationId: g.id,
            batchIndex: i,
            width: 64,
            height: 64,
            metadata: {
              positive_prompt: 'partly made',
              negative_prompt: '',
              seed: 1,
              steps: 1,
              cfg_scale: 1,
              scheduler: 'euler',
              width: 64,
              height: 64,
              model: { name: 'sd-turbo' },
              generation_mode: 'txt2img',
              app_version: '0.1.0',
            },
            size: 10,
            sha256: 'a'.repeat(64),
            thumbMime: 'image/webp' as const,
          })),
        ),
      );
    return g as { id: string };
  }

  it('a running batch of 4 canceled before any image: nothing charged', async () => {
    const u = await newUser();
    const g = await runningWith(u, 4, 0);
    expect((await me(u)).usage.used).toBe(4);
    expect((await cancel(u, g.id)).statusCode).toBe(200);
    expect((await me(u)).usage.used).toBe(0);
    await expectLedgerMatches(u.sub);
  });

  it('a running batch of 4 canceled after 1 image: 1 charged, 3 refunded once', async () => {
    const u = await newUser();
    const g = await runningWith(u, 4, 1);
    expect((await cancel(u, g.id)).statusCode).toBe(200);
    expect((await me(u)).usage.used).toBe(1);
    expect((await cancel(u, g.id)).statusCode).toBe(409);
    const refunds = await t.adminPool.query<{ amount: number }>(
      `SELECT amount FROM usage_ledger WHERE generation_id = $1 AND kind = 'refund'`,
      [g.id],
    );
    expect(refunds.rows).toEqual([{ amount: -3 }]);
    await expectLedgerMatches(u.sub);
  });
});

describe('upgradeUrl', () => {
  it('QUOTA_EXCEEDED points at a page a person can open without signing in, which explains the plans', async () => {
    const u = await newUser();
    await setUsed(u.sub, 100);
    const res = await submit(u, { prompt: 'one too many' });
    expect(res.statusCode).toBe(429);
    const upgradeUrl = new URL(res.json().error.details.upgradeUrl as string);
    expect(upgradeUrl.pathname).toBe('/v1/billing/upgrade');
    const page = await t.app.inject({ method: 'GET', url: upgradeUrl.pathname });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<h1>Upgrade to Atelier Pro</h1>');
    expect(page.body).toContain('1,000 cloud images per month');
    expect(page.body).toContain('$12.00 per month');
  });
});
