import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config.ts';

const stripe = { STRIPE_SECRET_KEY: 'sk_test_123', STRIPE_WEBHOOK_SECRET: 'whsec_abc', STRIPE_PRICE_PRO: 'price_pro' };

describe('billing config', () => {
  it('is off without Stripe keys, with a 7-day grace and the API URL as public URL', () => {
    expect(parseConfig({}).billing).toEqual({ enabled: false, graceDays: 7, publicApiUrl: 'http://127.0.0.1:8787' });
  });

  it('is on with all three keys, and takes the SDK host/port/protocol for a local peer', () => {
    const b = parseConfig({
      ...stripe,
      STRIPE_API_HOST: '127.0.0.1',
      STRIPE_API_PORT: '12111',
      STRIPE_API_PROTOCOL: 'http',
      BILLING_GRACE_DAYS: '3',
      PUBLIC_API_URL: 'https://api.atelier.example/',
    }).billing;
    expect(b).toEqual({
      enabled: true,
      secretKey: 'sk_test_123',
      webhookSecret: 'whsec_abc',
      proPriceId: 'price_pro',
      api: { host: '127.0.0.1', port: 12111, protocol: 'http' },
      graceDays: 3,
      publicApiUrl: 'https://api.atelier.example',
    });
  });

  it.each([
    [{ STRIPE_SECRET_KEY: 'sk_test_1' }, /STRIPE_WEBHOOK_SECRET: required[\s\S]*STRIPE_PRICE_PRO: required/],
    [{ ...stripe, STRIPE_PRICE_PRO: 'prod_123' }, /STRIPE_PRICE_PRO: expected a Price id/],
    [{ ...stripe, STRIPE_WEBHOOK_SECRET: 'abc' }, /STRIPE_WEBHOOK_SECRET/],
    [{ ...stripe, PUBLIC_API_URL: 'http://api.atelier.example' }, /PUBLIC_API_URL: .*https/],
    [
      {
        ...stripe,
        ATELIER_ENV: 'production',
        COGNITO_REGION: 'eu-west-1',
        COGNITO_USER_POOL_ID: 'eu-west-1_abc',
        PUBLIC_API_URL: 'http://127.0.0.1:8787',
      },
      /PUBLIC_API_URL/,
    ],
    [{ ...stripe, BILLING_GRACE_DAYS: '-1' }, /BILLING_GRACE_DAYS/],
  ])('refuses %o, naming the variable', (env, message) => {
    expect(() => parseConfig(env)).toThrow(ConfigError);
    expect(() => parseConfig(env)).toThrow(message);
  });
});
