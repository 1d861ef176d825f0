/**
 * The Billing port: what the API needs from a payment provider, in Atelier's terms. The one
 * implementation is StripeBilling (stripe-billing.ts); tests drive it against a local HTTP peer that
 * speaks Stripe's wire protocol, so there is no in-memory double to drift from the real SDK.
 *
 * Calls throw AppError: BILLING_UNAVAILABLE (502) when the provider cannot be reached, is rate
 * limiting us or declines; INTERNAL for misconfiguration (bad key, unknown price).
 */
import type { Result } from '@atelier/common/errors';
import type { SubscriptionSnapshot } from './plan-rules.ts';

/** The webhook event types that move plans. Others are acknowledged and ignored. */
export const HANDLED_EVENT_TYPES = [
  'checkout.session.completed',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'invoice.paid',
  'invoice.payment_failed',
] as const;
export type HandledEventType = (typeof HANDLED_EVENT_TYPES)[number];

/** A verified webhook event reduced to what decides a plan; the subscription is re-read, never trusted from here. */
export interface BillingEvent {
  id: string;
  type: string;
  /** When the provider created the event (its own clock). */
  created: Date;
  livemode: boolean;
  /** null for event types that carry no subscription (they change nothing). */
  subscriptionId: string | null;
  customerId: string | null;
  /** checkout.session.completed only: the user id we put on the session. */
  clientReferenceId: string | null;
}

export interface CheckoutRequest {
  customerId: string;
  userId: string;
  successUrl: string;
  cancelUrl: string;
  idempotencyKey: string;
}

export interface Billing {
  /** Creates the provider's customer for a user (metadata userId); idempotent per user for a day. */
  createCustomer(input: { userId: string; email: string | null }): Promise<{ customerId: string }>;
  /** A hosted Checkout page for the Pro subscription. */
  createCheckoutSession(input: CheckoutRequest): Promise<{ id: string; url: string }>;
  /** A hosted page where the customer manages payment methods and cancels. */
  createPortalSession(input: { customerId: string; returnUrl: string }): Promise<{ url: string }>;
  /** Sets the customer's email (receipts go there): the account's verified email. */
  updateCustomerEmail(customerId: string, email: string): Promise<void>;
  /** The subscription as the provider sees it now; null when it does not exist there. */
  getSubscription(subscriptionId: string): Promise<SubscriptionSnapshot | null>;
  /**
   * Checks the signature over the exact bytes received and the timestamp against `now`; a bad
   * signature, stale timestamp or malformed body is WEBHOOK_SIGNATURE_INVALID.
   */
  verifyWebhook(rawBody: Buffer, signatureHeader: string | undefined, now: Date): Result<BillingEvent>;
}
