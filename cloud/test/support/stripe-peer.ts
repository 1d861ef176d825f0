/**
 * A local HTTP peer that speaks enough of Stripe's v1 wire protocol for the real `stripe` SDK:
 * customers, Checkout Sessions, Customer Portal sessions and subscription reads, with Stripe's
 * idempotent-replay semantics and injectable failures (card declined, rate limited, network down,
 * 5xx). It records every request (method, path, headers, form body) so tests assert exactly what
 * the SDK sent. Plus builders for signed webhook events.
 *
 * Object shapes follow Stripe's own example objects for API 2026-10-28 (stripe/openapi
 * fixtures3.json, MIT licence, Copyright (c) 2011- Stripe, Inc.), trimmed to the fields Atelier and
 * the SDK read; note the billing period lives on subscription items, and an invoice names its
 * subscription under parent.subscription_details.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { createBillingService, type BillingService } from '../../src/billing/billing-service.ts';
import { StripeBilling } from '../../src/billing/stripe-billing.ts';
import type { Pool } from '../../src/db/pool.ts';
import { publishEvent } from '../../src/events/publish.ts';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** The x-www-form-urlencoded body, keys in Stripe's bracket notation (`line_items[0][price]`). */
  form: Record<string, string>;
}

export type Failure = 'card_declined' | 'rate_limited' | 'network' | 'server_error';
interface FailRule {
  method?: string;
  path: RegExp;
  failure: Failure;
  remaining: number;
}

type Obj = Record<string, unknown>;

export interface SubscriptionInit {
  id?: string;
  customer: string;
  status: string;
  priceId: string;
  periodStart: Date;
  periodEnd: Date;
  cancelAtPeriodEnd?: boolean;
  cancelAt?: Date | null;
  metadata?: Record<string, string>;
}

const sec = (d: Date) => Math.floor(d.getTime() / 1000);
const rid = (prefix: string) => `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;

/** A subscription object shaped like API 2026-10-28's. */
export function subscriptionObject(init: SubscriptionInit): Obj {
  const id = init.id ?? rid('sub');
  const canceled = init.status === 'canceled';
  return {
    id,
    object: 'subscription',
    application: null,
    automatic_tax: { enabled: false, liability: null, disabled_reason: null },
    billing_cycle_anchor: sec(init.periodStart),
    billing_mode: { type: 'flexible' },
    cancel_at: init.cancelAt ? sec(init.cancelAt) : init.cancelAtPeriodEnd ? sec(init.periodEnd) : null,
    cancel_at_period_end: init.cancelAtPeriodEnd ?? false,
    canceled_at: canceled ? sec(init.periodStart) : null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: 'charge_automatically',
    created: sec(init.periodStart),
    currency: 'usd',
    customer: init.customer,
    customer_account: null,
    default_payment_method: null,
    description: null,
    discounts: [],
    ended_at: canceled ? sec(init.periodEnd) : null,
    items: {
      object: 'list',
      data: [
        {
          id: rid('si'),
          object: 'subscription_item',
          created: sec(init.periodStart),
          current_period_start: sec(init.periodStart),
          current_period_end: sec(init.periodEnd),
          discounts: [],
          metadata: {},
          price: priceObject(init.priceId),
          quantity: 1,
          subscription: id,
          tax_rates: [],
        },
      ],
      has_more: false,
      url: `/v1/subscription_items?subscription=${id}`,
    },
    latest_invoice: null,
    livemode: false,
    metadata: init.metadata ?? {},
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: sec(init.periodStart),
    status: init.status,
    test_clock: null,
    trial_end: null,
    trial_start: null,
  };
}

function priceObject(id: string): Obj {
  return {
    id,
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    currency: 'usd',
    livemode: false,
    lookup_key: null,
    metadata: {},
    product: 'prod_atelier_pro',
    recurring: { interval: 'month', interval_count: 1, meter: null, usage_type: 'licensed', trial_period_days: null },
    type: 'recurring',
    unit_amount: 1200,
    unit_amount_decimal: '1200',
  };
}

/** A completed subscription-mode Checkout Session. */
export function checkoutSessionObject(init: {
  customer: string;
  subscription: string | null;
  clientReferenceId: string | null;
  id?: string;
}): Obj {
  const id = init.id ?? `cs_test_${randomBytes(24).toString('hex')}`;
  return {
    id,
    object: 'checkout.session',
    client_reference_id: init.clientReferenceId,
    created: sec(new Date()),
    currency: 'usd',
    customer: init.customer,
    customer_details: { email: null, name: null, phone: null, tax_exempt: 'none', tax_ids: [] },
    expires_at: sec(new Date()) + 86_400,
    invoice: null,
    livemode: false,
    metadata: {},
    mode: 'subscription',
    payment_status: 'paid',
    status: 'complete',
    subscription: init.subscription,
    success_url: 'https://api.example/v1/billing/return?status=success',
    cancel_url: 'https://api.example/v1/billing/return?status=cancel',
    url: null,
  };
}

/** An invoice of a subscription (current shape: the subscription under parent.subscription_details). */
export function invoiceObject(init: {
  customer: string;
  subscription: string;
  status: 'paid' | 'open';
  attemptCount?: number;
}): Obj {
  return {
    id: rid('in'),
    object: 'invoice',
    amount_due: 1200,
    amount_paid: init.status === 'paid' ? 1200 : 0,
    amount_remaining: init.status === 'paid' ? 0 : 1200,
    attempt_count: init.attemptCount ?? 1,
    attempted: true,
    billing_reason: 'subscription_cycle',
    collection_method: 'charge_automatically',
    created: sec(new Date()),
    currency: 'usd',
    customer: init.customer,
    livemode: false,
    metadata: {},
    parent: {
      quote_details: null,
      subscription_details: { metadata: null, subscription: init.subscription },
      type: 'subscription_details',
    },
    status: init.status,
    total: 1200,
  };
}

/** An event envelope like Stripe delivers it (snapshot payload). */
export function eventObject(type: string, object: Obj, opts: { id?: string; created?: Date } = {}): Obj {
  return {
    id: opts.id ?? rid('evt'),
    object: 'event',
    api_version: Stripe.API_VERSION,
    created: sec(opts.created ?? new Date()),
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
}

/** The body and Stripe-Signature header of a webhook delivery, signed with the SDK's own test helper. */
export function signWebhook(
  event: Obj,
  secret: string,
  opts: { timestamp?: Date } = {},
): { payload: string; headers: Record<string, string> } {
  const payload = JSON.stringify(event, null, 2);
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(opts.timestamp ? { timestamp: sec(opts.timestamp) } : {}),
  });
  return { payload, headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header } };
}

export class StripePeer {
  readonly requests: RecordedRequest[] = [];
  readonly customers = new Map<string, Obj>();
  readonly subscriptions = new Map<string, Obj>();
  readonly checkoutSessions = new Map<string, Obj>();
  readonly portalSessions = new Map<string, Obj>();
  readonly #idempotent = new Map<string, { status: number; body: string }>();
  readonly #rules: FailRule[] = [];
  readonly #server: http.Server;
  port = 0;

  private constructor() {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
    this.#server.keepAliveTimeout = 1000;
  }

  static async start(): Promise<StripePeer> {
    const peer = new StripePeer();
    await new Promise<void>((resolve) => peer.#server.listen(0, '127.0.0.1', resolve));
    peer.port = (peer.#server.address() as AddressInfo).port;
    return peer;
  }

  /** SDK options that point the real client here. */
  get sdkOptions(): { host: string; port: number; protocol: 'http' } {
    return { host: '127.0.0.1', port: this.port, protocol: 'http' };
  }

  /** Requests matching a method and a path (string = exact, RegExp = test). */
  sent(method: string, path: string | RegExp): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)),
    );
  }

  /** Makes matching requests fail, `times` times (default: until heal()). */
  fail(failure: Failure, match: { method?: string; path: RegExp }, times = Number.POSITIVE_INFINITY): void {
    this.#rules.push({ ...match, failure, remaining: times });
  }

  heal(): void {
    this.#rules.length = 0;
  }

  /** Stores (or replaces) a subscription the SDK can then retrieve. */
  putSubscription(init: SubscriptionInit): Obj {
    const sub = subscriptionObject(init);
    this.subscriptions.set(sub.id as string, sub);
    return sub;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://peer');
    const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    const method = req.method ?? 'GET';
    const rec: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      form,
    };
    this.requests.push(rec);

    const rule = this.#rules.find(
      (r) => r.remaining > 0 && (!r.method || r.method === method) && r.path.test(url.pathname),
    );
    if (rule) {
      rule.remaining -= 1;
      if (rule.failure === 'network') {
        req.socket.destroy();
        return;
      }
      const [status, error] = FAILURES[rule.failure];
      return this.#send(res, status, { error: { ...error, request_log_url: null } });
    }
    if (req.headers.authorization !== `Bearer ${PEER_SECRET_KEY}`)
      return this.#send(res, 401, {
        error: { type: 'invalid_request_error', message: 'Invalid API Key provided.' },
      });

    const key = req.headers['idempotency-key'];
    const replayKey = typeof key === 'string' && method === 'POST' ? `${url.pathname} ${key}` : null;
    const replay = replayKey ? this.#idempotent.get(replayKey) : undefined;
    if (replay) {
      res.setHeader('idempotent-replayed', 'true');
      res.writeHead(replay.status, { 'content-type': 'application/json' });
      res.end(replay.body);
      return;
    }
    const [status, body] = this.#route(method, url.pathname, form);
    if (replayKey && status < 500) this.#idempotent.set(replayKey, { status, body: JSON.stringify(body) });
    this.#send(res, status, body);
  }

  #route(method: string, path: string, form: Record<string, string>): [number, Obj] {
    const missing = (what: string, id: string): [number, Obj] => [
      404,
      {
        error: {
          type: 'invalid_request_error',
          code: 'resource_missing',
          param: 'id',
          message: `No such ${what}: '${id}'`,
        },
      },
    ];
    if (method === 'POST' && path === '/v1/customers') {
      const c: Obj = {
        id: rid('cus'),
        object: 'customer',
        created: sec(new Date()),
        email: form.email ?? null,
        livemode: false,
        metadata: pickPrefixed(form, 'metadata'),
        name: null,
      };
      this.customers.set(c.id as string, c);
      return [200, c];
    }
    let m = /^\/v1\/customers\/([^/]+)$/.exec(path);
    if (method === 'GET' && m) {
      const c = this.customers.get(m[1]!);
      return c ? [200, c] : missing('customer', m[1]!);
    }
    if (method === 'POST' && m) {
      const c = this.customers.get(m[1]!);
      if (!c) return missing('customer', m[1]!);
      if (form.email !== undefined) c.email = form.email;
      return [200, c];
    }
    if (method === 'POST' && path === '/v1/checkout/sessions') {
      const customer = form.customer;
      if (customer && !this.customers.has(customer)) return missing('customer', customer);
      const id = `cs_test_${randomBytes(24).toString('hex')}`;
      const s: Obj = {
        ...checkoutSessionObject({ id, customer: customer ?? '', subscription: null, clientReferenceId: null }),
        client_reference_id: form.client_reference_id ?? null,
        mode: form.mode,
        payment_status: 'unpaid',
        status: 'open',
        success_url: form.success_url,
        cancel_url: form.cancel_url,
        metadata: pickPrefixed(form, 'metadata'),
        url: `https://checkout.stripe.com/c/pay/${id}`,
      };
      this.checkoutSessions.set(id, s);
      return [200, s];
    }
    if (method === 'POST' && path === '/v1/billing_portal/sessions') {
      const customer = form.customer ?? '';
      if (!this.customers.has(customer)) return missing('customer', customer);
      const id = rid('bps');
      const s: Obj = {
        id,
        object: 'billing_portal.session',
        configuration: 'bpc_atelier',
        created: sec(new Date()),
        customer,
        flow: null,
        livemode: false,
        locale: null,
        on_behalf_of: null,
        return_url: form.return_url ?? null,
        url: `https://billing.stripe.com/p/session/test_${randomBytes(16).toString('hex')}`,
      };
      this.portalSessions.set(id, s);
      return [200, s];
    }
    m = /^\/v1\/subscriptions\/([^/]+)$/.exec(path);
    if (method === 'GET' && m) {
      const s = this.subscriptions.get(m[1]!);
      return s ? [200, s] : missing('subscription', m[1]!);
    }
    // Account deletion (issue 14): cancel a subscription now, delete a customer.
    if (method === 'DELETE' && m) {
      const s = this.subscriptions.get(m[1]!);
      if (!s) return missing('subscription', m[1]!);
      if (s.status === 'canceled')
        return [
          400,
          {
            error: {
              type: 'invalid_request_error',
              message: 'A canceled subscription can only update its cancellation_details and metadata.',
            },
          },
        ];
      Object.assign(s, { status: 'canceled', canceled_at: sec(new Date()), ended_at: sec(new Date()) });
      return [200, s];
    }
    m = /^\/v1\/customers\/([^/]+)$/.exec(path);
    if (method === 'DELETE' && m) {
      if (!this.customers.delete(m[1]!)) return missing('customer', m[1]!);
      return [200, { id: m[1]!, object: 'customer', deleted: true }];
    }
    return [
      404,
      { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` } },
    ];
  }

  #send(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': rid('req') });
    res.end(JSON.stringify(body));
  }
}

/** The secret key the peer accepts; anything else is a 401 like Stripe's. */
export const PEER_SECRET_KEY = 'sk_test_atelier_peer';

const FAILURES: Record<Exclude<Failure, 'network'>, [number, Obj]> = {
  card_declined: [
    402,
    {
      type: 'card_error',
      code: 'card_declined',
      decline_code: 'generic_decline',
      message: 'Your card was declined.',
    },
  ],
  rate_limited: [
    429,
    {
      type: 'invalid_request_error',
      code: 'rate_limit',
      message: 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
    },
  ],
  server_error: [500, { type: 'api_error', message: 'An unknown error occurred' }],
};

function pickPrefixed(form: Record<string, string>, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = new RegExp(`^${prefix}\\[([^\\]]+)\\]$`);
  for (const [k, v] of Object.entries(form)) {
    const m = re.exec(k);
    if (m) out[m[1]!] = v;
  }
  return out;
}

/**
 * The billing service as the API composes it, talking to a StripePeer: one construction for every
 * test that drives checkout, webhooks or the sweeper against the peer.
 */
export function peerBillingService(o: {
  peer: StripePeer;
  webhookSecret: string;
  proPriceId: string;
  appPool: Pool;
  systemPool: Pool;
  clock?: () => Date;
}): BillingService {
  return createBillingService({
    billing: new StripeBilling({
      secretKey: PEER_SECRET_KEY,
      webhookSecret: o.webhookSecret,
      proPriceId: o.proPriceId,
      api: o.peer.sdkOptions,
      maxNetworkRetries: 0,
    }),
    appPool: o.appPool,
    systemPool: o.systemPool,
    publish: publishEvent,
    clock: o.clock ?? (() => new Date()),
    graceDays: 7,
    proPriceId: o.proPriceId,
    publicApiUrl: 'https://api.atelier.test',
    log: { info: () => {}, warn: () => {}, error: () => {} },
  });
}
