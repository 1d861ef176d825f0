/**
 * Issue 11: only a verified email becomes the account's email (and so the Stripe customer's); a
 * verified change reaches the account, an unverified one leaves the last verified email in place.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cognitoCall } from '../src/auth/cognito-client.ts';
import { cognitoEmailLookup } from '../src/auth/provision.ts';
import { PEER_SECRET_KEY, StripePeer } from './support/stripe-peer.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  stackInfo,
  type TestApp,
  type TestUser,
} from './support/index.ts';

let strict: TestApp;
let local: TestApp;

beforeAll(async () => {
  const s = stackInfo();
  // EMAIL_REFRESH_SECONDS=0: every request re-reads the email, so each step is visible at once.
  const db = await createTestDatabase({ EMAIL_REFRESH_SECONDS: '0' });
  // Production's rule: only email_verified = "true" counts.
  strict = await buildTestApp({ db, overrides: { emailLookup: cognitoEmailLookup(s.cognitoEndpoint) } });
  local = await buildTestApp({ db });
});
afterAll(async () => {
  await strict.close();
  await local.close();
});

const meOf = async (t: TestApp, u: TestUser) => {
  const res = await t.app.inject({ url: '/v1/me', headers: auth(u) });
  expect(res.statusCode).toBe(200);
  return res.json() as { email: string | null };
};
const storedEmail = async (u: TestUser) =>
  (await strict.adminPool.query<{ email: string | null }>('SELECT email FROM users WHERE id = $1', [u.sub])).rows[0]
    ?.email;

async function adminSetAttributes(u: TestUser, attrs: Record<string, string>) {
  const s = stackInfo();
  await cognitoCall(s.cognitoEndpoint, 'AdminUpdateUserAttributes', {
    UserPoolId: s.userPoolId,
    Username: u.sub,
    UserAttributes: Object.entries(attrs).map(([Name, Value]) => ({ Name, Value })),
  });
}

describe('verified email only', () => {
  it('an email Cognito has not verified is not stored; once verified, it is', async () => {
    const u = await createTestUser();
    expect((await meOf(strict, u)).email).toBeNull();
    expect(await storedEmail(u)).toBeNull();
    await adminSetAttributes(u, { email: u.email, email_verified: 'true' });
    expect((await meOf(strict, u)).email).toBe(u.email);
    expect(await storedEmail(u)).toBe(u.email);
  });

  it('an unverified change keeps the original email; a verified change replaces it', async () => {
    const u = await createTestUser();
    await adminSetAttributes(u, { email: u.email, email_verified: 'true' });
    expect((await meOf(strict, u)).email).toBe(u.email);

    const next = `changed-${randomUUID()}@example.test`;
    // The user changes their own email: Cognito marks it unverified until the code is entered.
    await cognitoCall(stackInfo().cognitoEndpoint, 'UpdateUserAttributes', {
      AccessToken: u.accessToken,
      UserAttributes: [{ Name: 'email', Value: next }],
    });
    expect((await meOf(strict, u)).email).toBe(u.email);
    expect((await meOf(local, u)).email).toBe(u.email);

    await adminSetAttributes(u, { email: next, email_verified: 'true' });
    expect((await meOf(strict, u)).email).toBe(next);
    expect(await storedEmail(u)).toBe(next);
  });
});

describe('the Stripe customer follows the verified email', () => {
  it('a verified change updates the customer; an unverified one does not', async () => {
    const peer = await StripePeer.start();
    const db = await createTestDatabase({
      EMAIL_REFRESH_SECONDS: '0',
      STRIPE_SECRET_KEY: PEER_SECRET_KEY,
      STRIPE_WEBHOOK_SECRET: 'whsec_email',
      STRIPE_PRICE_PRO: 'price_pro_monthly',
      STRIPE_API_HOST: '127.0.0.1',
      STRIPE_API_PORT: String(peer.port),
      STRIPE_API_PROTOCOL: 'http',
    });
    const b = await buildTestApp({ db, overrides: { emailLookup: cognitoEmailLookup(stackInfo().cognitoEndpoint) } });
    try {
      const u = await createTestUser();
      await adminSetAttributes(u, { email: u.email, email_verified: 'true' });
      const checkout = await b.app.inject({
        method: 'POST',
        url: '/v1/billing/checkout',
        headers: auth(u),
        payload: {},
      });
      expect(checkout.statusCode).toBe(200);
      const customerId = (
        await b.adminPool.query<{ c: string }>('SELECT stripe_customer_id AS c FROM subscriptions WHERE user_id = $1', [
          u.sub,
        ])
      ).rows[0]!.c;
      expect(peer.customers.get(customerId)!.email).toBe(u.email);

      const next = `billing-${randomUUID()}@example.test`;
      await cognitoCall(stackInfo().cognitoEndpoint, 'UpdateUserAttributes', {
        AccessToken: u.accessToken,
        UserAttributes: [{ Name: 'email', Value: next }],
      });
      expect((await meOf(b, u)).email).toBe(u.email);
      expect(peer.customers.get(customerId)!.email).toBe(u.email);

      await adminSetAttributes(u, { email: next, email_verified: 'true' });
      expect((await meOf(b, u)).email).toBe(next);
      expect(peer.customers.get(customerId)!.email).toBe(next);
    } finally {
      await b.close();
      await peer.close();
    }
  });
});
