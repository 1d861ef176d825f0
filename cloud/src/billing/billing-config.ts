/**
 * Billing's part of the cloud configuration: the environment variables (spread into
 * config.ts's EnvSchema) and their validation. Without the three Stripe values billing is off —
 * the local stack runs that way — and `/v1/billing/*` answers 503 BILLING_DISABLED.
 */
import { z } from 'zod';

export const BILLING_ENV = {
  /** Secret API key (sk_live_…/sk_test_…, or a restricted rk_… key). Unset = billing off. */
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  /** Signing secret of the webhook endpoint (whsec_…). */
  STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
  /** The recurring Price of the Pro plan (price_…). */
  STRIPE_PRICE_PRO: z.string().min(1).optional(),
  /** Where the SDK sends API calls: tests and `stripe-mock`-style peers only. */
  STRIPE_API_HOST: z.string().min(1).optional(),
  STRIPE_API_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  STRIPE_API_PROTOCOL: z.enum(['http', 'https']).optional(),
  /** Unit: days a past_due subscription keeps Pro while Stripe retries the payment. */
  BILLING_GRACE_DAYS: z.coerce.number().int().min(0).max(60).default(7),
  /** The API's public base URL; Checkout and the portal return to a page under it. https in production. */
  PUBLIC_API_URL: z.string().url().optional(),
};

/** The section on its own, for tools that validate only billing's variables. */
export const BillingEnvSchema = z.object(BILLING_ENV);
type BillingEnv = z.output<typeof BillingEnvSchema>;

export type BillingConfig = {
  /** The API's public base URL, without a trailing slash. */
  publicApiUrl: string;
  /** Unit: days. */
  graceDays: number;
} & (
  | { enabled: false }
  | {
      enabled: true;
      secretKey: string;
      webhookSecret: string;
      proPriceId: string;
      api: { host?: string; port?: number; protocol?: 'http' | 'https' };
    }
);

const isLoopback = (url: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);

/** Builds billing's config, or calls `fail` with every problem, each naming its variable. */
export function toBillingConfig(
  e: BillingEnv,
  ctx: { production: boolean; apiHost: string; apiPort: number },
  fail: (message: string) => never,
): BillingConfig {
  const problems: string[] = [];
  const publicApiUrl = (e.PUBLIC_API_URL ?? `http://${ctx.apiHost}:${ctx.apiPort}`).replace(/\/+$/, '');
  const keys = {
    STRIPE_SECRET_KEY: e.STRIPE_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET: e.STRIPE_WEBHOOK_SECRET,
    STRIPE_PRICE_PRO: e.STRIPE_PRICE_PRO,
  };
  const set = Object.entries(keys).filter(([, v]) => v !== undefined);
  const base = { publicApiUrl, graceDays: e.BILLING_GRACE_DAYS };
  if (set.length === 0) return { ...base, enabled: false };
  for (const [name, v] of Object.entries(keys))
    if (v === undefined) problems.push(`  ${name}: required when any STRIPE_* key is set (billing needs all three)`);
  if (e.STRIPE_SECRET_KEY && !/^(sk|rk)_(test|live)_/.test(e.STRIPE_SECRET_KEY))
    problems.push('  STRIPE_SECRET_KEY: expected a secret key (sk_live_…, sk_test_… or rk_…)');
  if (e.STRIPE_WEBHOOK_SECRET && !e.STRIPE_WEBHOOK_SECRET.startsWith('whsec_'))
    problems.push('  STRIPE_WEBHOOK_SECRET: expected the endpoint signing secret (whsec_…)');
  if (e.STRIPE_PRICE_PRO && !e.STRIPE_PRICE_PRO.startsWith('price_'))
    problems.push('  STRIPE_PRICE_PRO: expected a Price id (price_…), not a Product id');
  const url = new URL(publicApiUrl);
  if (url.protocol !== 'https:' && (ctx.production || !isLoopback(url)))
    problems.push(
      '  PUBLIC_API_URL: Checkout returns to it, so it must be https (http only on loopback outside production)',
    );
  if (ctx.production && (e.STRIPE_API_HOST || e.STRIPE_API_PORT || e.STRIPE_API_PROTOCOL))
    problems.push('  STRIPE_API_HOST/PORT/PROTOCOL: only for tests; production talks to api.stripe.com');
  if (problems.length) fail(`Invalid configuration:\n${problems.join('\n')}`);
  return {
    ...base,
    enabled: true,
    secretKey: e.STRIPE_SECRET_KEY!,
    webhookSecret: e.STRIPE_WEBHOOK_SECRET!,
    proPriceId: e.STRIPE_PRICE_PRO!,
    api: {
      ...(e.STRIPE_API_HOST ? { host: e.STRIPE_API_HOST } : {}),
      ...(e.STRIPE_API_PORT ? { port: e.STRIPE_API_PORT } : {}),
      ...(e.STRIPE_API_PROTOCOL ? { protocol: e.STRIPE_API_PROTOCOL } : {}),
    },
  };
}
