/**
 * Error tracking (Sentry), opt-in by SENTRY_DSN. The API reports unexpected errors (the ones it
 * answers with 500 INTERNAL) with the request id and the user id — and never a prompt, a token, a
 * signature or a presigned URL: every event passes `scrubEvent` before it leaves the process.
 *
 * A client of its own per app (no global `Sentry.init`): nothing is sent without a DSN, no
 * automatic instrumentation patches modules, and several apps in one process (tests) do not share
 * state. Request bodies are never attached: the only request data on an event is method, route
 * template and request id.
 */
import { createTransport, defaultStackParser, makeNodeTransport, NodeClient, Scope } from '@sentry/node';
import type { ErrorEvent } from '@sentry/node';

export interface ErrorTracker {
  readonly enabled: boolean;
  capture(err: unknown, ctx: { requestId?: string; userId?: string | null; route?: string }): void;
  /** Sends what is queued (bounded) and stops. */
  close(timeoutMs?: number): Promise<void>;
}

export interface ErrorTrackingConfig {
  sentryDsn: string | null;
  environment: string;
  release: string | null;
}

const REDACTED = '[redacted]';
/** Keys whose values never leave: prompts (user content), credentials, presigned URLs. */
const SECRET_KEYS =
  /^(prompt|positive_prompt|negative_prompt|negativeprompt|positiveprompt|token|accesstoken|refreshtoken|idtoken|password|authorization|cookie|set-cookie|stripe-signature|sec-websocket-protocol|url|thumburl|uploadurl|presignedurl|x-amz-signature|secret|apikey|api_key|client_secret)$/i;
const JWT = /\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*/g;
const BEARER = /\b(Bearer|bearer\.)\s*[\w.~+/-]+=*/g;
/** A URL with a query string that signs or authorises (S3 presigned, Stripe, tokens): the query goes. */
const SIGNED_URL = /(https?:\/\/[^\s"'?]+)\?[^\s"']*/gi;
const STRIPE_KEY = /\b(?:(?:sk|rk|pk)_(?:live|test)_|whsec_)\w+/g;

/** Removes secrets from a string: JWTs, bearer tokens, URL query strings, Stripe keys. */
export function scrubString(s: string): string {
  return s
    .replace(JWT, REDACTED)
    .replace(BEARER, `$1 ${REDACTED}`)
    .replace(SIGNED_URL, `$1?${REDACTED}`)
    .replace(STRIPE_KEY, REDACTED);
}

function scrubValue(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return scrubString(v);
  if (depth > 8 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => scrubValue(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>))
    out[k] = SECRET_KEYS.test(k) ? REDACTED : scrubValue(x, depth + 1);
  return out;
}

/**
 * Sentry's beforeSend: keeps the user's id (and nothing else about the user), drops request
 * bodies, cookies, headers and query strings, and scrubs every string in the event (messages,
 * exception values, breadcrumbs, extras, contexts, tags) of tokens, prompts and presigned URLs.
 */
export function scrubEvent<E extends ErrorEvent>(event: E): E {
  const e = scrubValue(event, 0) as E;
  if (event.user) e.user = event.user.id !== undefined ? { id: String(event.user.id) } : {};
  if (event.request) {
    // Only the method and the path: no body, headers, cookies or query string.
    const { method, url } = event.request;
    e.request = {
      ...(method ? { method } : {}),
      ...(typeof url === 'string' ? { url: scrubString(url.split('?')[0]!) } : {}),
    };
  }
  return e;
}

const disabled: ErrorTracker = { enabled: false, capture() {}, async close() {} };

export function createErrorTracker(
  config: ErrorTrackingConfig,
  opts: { transport?: typeof makeNodeTransport } = {},
): ErrorTracker {
  if (!config.sentryDsn) return disabled;
  const client = new NodeClient({
    dsn: config.sentryDsn,
    environment: config.environment,
    ...(config.release ? { release: config.release } : {}),
    integrations: [],
    stackParser: defaultStackParser,
    transport: opts.transport ?? makeNodeTransport,
    beforeSend: (event) => scrubEvent(event),
    beforeBreadcrumb: () => null,
    maxValueLength: 2_000,
  });
  client.init();
  return {
    enabled: true,
    capture(err, ctx) {
      const scope = new Scope();
      scope.setClient(client);
      if (ctx.userId) scope.setUser({ id: ctx.userId });
      if (ctx.requestId) scope.setTag('request_id', ctx.requestId);
      if (ctx.route) scope.setTag('route', ctx.route);
      scope.captureException(err);
    },
    async close(timeoutMs = 2_000) {
      await client.close(timeoutMs);
    },
  };
}

export { createTransport };
