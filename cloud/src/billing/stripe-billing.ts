/**
 * Billing on the official Stripe SDK. Host, port and protocol are configurable so tests (and the
 * Stripe CLI's local forwarding) can point the real SDK at a local HTTP peer.
 */
import Stripe from 'stripe';
import { AppError, err, ok } from '@atelier/common/errors';
import type { Result } from '@atelier/common/errors';
import type { Billing, BillingEvent, CheckoutRequest } from './billing.ts';
import { SUBSCRIPTION_STATUSES } from './plan-rules.ts';
import type { SubscriptionSnapshot, SubscriptionStatus } from './plan-rules.ts';

export interface StripeBillingOptions {
  secretKey: string;
  webhookSecret: string;
  /** The recurring price of the Pro plan (price_…). */
  proPriceId: string;
  api?: { host?: string; port?: number; protocol?: 'http' | 'https' };
  /** Retries of idempotent requests on network errors, 409, 429 and 5xx (the SDK backs off). */
  maxNetworkRetries?: number;
  /** Unit: milliseconds per request. */
  timeoutMs?: number;
  /** Unit: seconds a webhook signature stays valid (Stripe's default is 300). */
  webhookToleranceSeconds?: number;
}

export class StripeBilling implements Billing {
  readonly #stripe: Stripe;
  readonly #webhookSecret: string;
  readonly #proPriceId: string;
  readonly #tolerance: number;

  constructor(opts: StripeBillingOptions) {
    this.#stripe = new Stripe(opts.secretKey, {
      ...(opts.api?.host ? { host: opts.api.host } : {}),
      ...(opts.api?.port ? { port: opts.api.port } : {}),
      ...(opts.api?.protocol ? { protocol: opts.api.protocol } : {}),
      maxNetworkRetries: opts.maxNetworkRetries ?? 2,
      timeout: opts.timeoutMs ?? 20_000,
      telemetry: false,
      appInfo: { name: 'Atelier Cloud' },
    });
    this.#webhookSecret = opts.webhookSecret;
    this.#proPriceId = opts.proPriceId;
    this.#tolerance = opts.webhookToleranceSeconds ?? 300;
  }

  async createCustomer(input: { userId: string; email: string | null }): Promise<{ customerId: string }> {
    const customer = await call('create the customer', () =>
      this.#stripe.customers.create(
        { metadata: { userId: input.userId }, ...(input.email ? { email: input.email } : {}) },
        // One customer per user even when two checkouts race or a retry follows a lost response.
        { idempotencyKey: `atelier-customer-${input.userId}` },
      ),
    );
    return { customerId: customer.id };
  }

  async updateCustomerEmail(customerId: string, email: string): Promise<void> {
    await call('update the customer', () => this.#stripe.customers.update(customerId, { email }));
  }

  async createCheckoutSession(input: CheckoutRequest): Promise<{ id: string; url: string }> {
    const session = await call('create the checkout session', () =>
      this.#stripe.checkout.sessions.create(
        {
          mode: 'subscription',
          customer: input.customerId,
          client_reference_id: input.userId,
          line_items: [{ price: this.#proPriceId, quantity: 1 }],
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          subscription_data: { metadata: { userId: input.userId } },
          metadata: { userId: input.userId },
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    if (!session.url) throw new AppError('BILLING_UNAVAILABLE', 'Stripe returned a checkout session without a url');
    return { id: session.id, url: session.url };
  }

  async createPortalSession(input: { customerId: string; returnUrl: string }): Promise<{ url: string }> {
    const session = await call('create the portal session', () =>
      this.#stripe.billingPortal.sessions.create({ customer: input.customerId, return_url: input.returnUrl }),
    );
    return { url: session.url };
  }

  async getSubscription(subscriptionId: string): Promise<SubscriptionSnapshot | null> {
    try {
      const sub = await this.#stripe.subscriptions.retrieve(subscriptionId);
      return toSnapshot(sub);
    } catch (e) {
      if (e instanceof Stripe.errors.StripeInvalidRequestError && e.statusCode === 404) return null;
      throw toAppError('read the subscription', e);
    }
  }

  verifyWebhook(rawBody: Buffer, signatureHeader: string | undefined, now: Date): Result<BillingEvent> {
    const invalid = (why: string) => err(new AppError('WEBHOOK_SIGNATURE_INVALID', why));
    if (!signatureHeader) return invalid('missing Stripe-Signature header');
    // The SDK rejects events older than the tolerance; refuse ones from the future as well.
    const t = /(?:^|,)t=(\d+)/.exec(signatureHeader)?.[1];
    if (t && Number(t) * 1000 > now.getTime() + this.#tolerance * 1000) return invalid('timestamp in the future');
    let event: Stripe.Event;
    try {
      event = this.#stripe.webhooks.constructEvent(
        rawBody,
        signatureHeader,
        this.#webhookSecret,
        this.#tolerance,
        undefined,
        now.getTime(),
      );
    } catch (e) {
      return invalid(e instanceof Error ? e.message : 'signature verification failed');
    }
    // Signed, but not an event object (`null`, an array, a number…): the sender's mistake, a 400.
    const shape = event as unknown;
    if (
      !shape ||
      typeof shape !== 'object' ||
      Array.isArray(shape) ||
      typeof event.id !== 'string' ||
      typeof event.type !== 'string' ||
      typeof event.created !== 'number' ||
      !event.data ||
      typeof event.data !== 'object' ||
      !event.data.object ||
      typeof event.data.object !== 'object'
    )
      return err(new AppError('BAD_REQUEST', 'The webhook body is signed but is not a Stripe event object'));
    return ok(toBillingEvent(event));
  }
}

function toBillingEvent(event: Stripe.Event): BillingEvent {
  const obj = event.data.object as unknown as Record<string, unknown>;
  let subscriptionId: string | null = null;
  let clientReferenceId: string | null = null;
  if (event.type === 'checkout.session.completed') {
    subscriptionId = idOf(obj.subscription);
    clientReferenceId = typeof obj.client_reference_id === 'string' ? obj.client_reference_id : null;
  } else if (event.type.startsWith('customer.subscription.')) {
    subscriptionId = idOf(obj.id);
  } else if (event.type.startsWith('invoice.')) {
    // Since 2025-03-31 the subscription sits under parent.subscription_details.
    const parent = obj.parent as { subscription_details?: { subscription?: unknown } | null } | null | undefined;
    subscriptionId = idOf(parent?.subscription_details?.subscription) ?? idOf(obj.subscription);
  }
  return {
    id: event.id,
    type: event.type,
    created: new Date(event.created * 1000),
    livemode: event.livemode,
    subscriptionId,
    customerId: idOf(obj.customer),
    clientReferenceId,
  };
}

function idOf(v: unknown): string | null {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string')
    return (v as { id: string }).id;
  return null;
}

export function toSnapshot(sub: Stripe.Subscription): SubscriptionSnapshot {
  const items = sub.items?.data ?? [];
  const starts = items.map((i) => i.current_period_start).filter((n): n is number => typeof n === 'number');
  const ends = items.map((i) => i.current_period_end).filter((n): n is number => typeof n === 'number');
  const status: SubscriptionStatus = (SUBSCRIPTION_STATUSES as readonly string[]).includes(sub.status)
    ? (sub.status as SubscriptionStatus)
    : 'incomplete';
  return {
    id: sub.id,
    customerId: idOf(sub.customer) ?? '',
    status,
    priceIds: items.map((i) => i.price?.id).filter((p): p is string => typeof p === 'string'),
    cancelAtPeriodEnd: sub.cancel_at_period_end === true,
    cancelAt: typeof sub.cancel_at === 'number' ? new Date(sub.cancel_at * 1000) : null,
    currentPeriodStart: starts.length ? new Date(Math.max(...starts) * 1000) : null,
    currentPeriodEnd: ends.length ? new Date(Math.min(...ends) * 1000) : null,
  };
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toAppError(what, e);
  }
}

/** Maps the SDK's errors to our codes; the Stripe error stays attached as the cause for logs. */
export function toAppError(what: string, e: unknown): AppError {
  if (AppError.is(e)) return e;
  const E = Stripe.errors;
  const base = `Stripe: could not ${what}`;
  if (e instanceof E.StripeCardError)
    return new AppError('BILLING_UNAVAILABLE', `${base}: card declined (${e.code ?? 'card_error'})`, {
      cause: e,
      retryable: false,
      userMessage: `Your card was declined${e.message ? `: ${e.message}` : ''}. Nothing was charged; try another card.`,
      details: { reason: 'card_declined' },
    });
  if (e instanceof E.StripeRateLimitError)
    return new AppError('BILLING_UNAVAILABLE', `${base}: rate limited`, {
      cause: e,
      details: { reason: 'rate_limited' },
    });
  if (e instanceof E.StripeConnectionError)
    return new AppError('BILLING_UNAVAILABLE', `${base}: ${e.message}`, { cause: e, details: { reason: 'network' } });
  if (e instanceof E.StripeAPIError || (e instanceof E.StripeError && (e.statusCode ?? 0) >= 500))
    return new AppError('BILLING_UNAVAILABLE', `${base}: Stripe error ${e.statusCode ?? ''}`, {
      cause: e,
      details: { reason: 'provider_error' },
    });
  // Authentication, permission, invalid request, idempotency mismatch: our configuration or code is wrong.
  return new AppError('INTERNAL', `${base}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
