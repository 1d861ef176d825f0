/**
 * Signed outbound webhooks (issue 16): the endpoint management API, the delivery log, and the
 * payloads Atelier POSTs to a user's endpoint. The cloud declares these as route schemas (and so
 * the OpenAPI document); the desktop parses every response with them; a receiver can parse the
 * bodies it gets with `WebhookEvent`.
 */
import { z } from 'zod';
import { GenerationIdSchema, ImageIdSchema } from '../api.ts';
import { ERROR_CODE_LIST } from '../errors.ts';
import { PlanId } from '../plans.ts';

const prefixed = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[0-9A-Z]{22}$`), `must be a ${prefix}_ id`);
const isoDate = z.string().datetime({ offset: true });

export const WebhookEndpointIdSchema = prefixed('whk');
export const WebhookDeliveryIdSchema = prefixed('whd');
export const WebhookEventIdSchema = prefixed('evt');
export const WebhookEndpointIdParams = z.object({ id: WebhookEndpointIdSchema });
export const WebhookDeliveryParams = z.object({ id: WebhookEndpointIdSchema, deliveryId: WebhookDeliveryIdSchema });

/** The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export const WEBHOOK_SIGNATURE_HEADER = 'Atelier-Signature';
/** Unit: seconds. How old a signed timestamp a receiver should accept (docs/WEBHOOKS.md). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;
/** Endpoints one user may register. */
export const MAX_WEBHOOK_ENDPOINTS = 10;
/** Unit: characters of a webhook URL. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** Events a user can subscribe an endpoint to. `ping` is sent only by "send test". */
export const WEBHOOK_EVENT_TYPES = [
  'generation.succeeded',
  'generation.failed',
  'usage.threshold',
  'plan.changed',
] as const;
export const WebhookEventType = z.enum(WEBHOOK_EVENT_TYPES);
export type WebhookEventType = z.infer<typeof WebhookEventType>;

const WebhookUrl = z
  .string()
  .trim()
  .min(1)
  .max(MAX_WEBHOOK_URL_LENGTH)
  .refine(
    (s) => /^[a-z][a-z0-9+.-]*:\/\/[^/\s?#]+/i.test(s),
    'must be a full URL such as https://example.com/hooks/atelier',
  );

const EventList = z
  .array(WebhookEventType)
  .min(1, 'choose at least one event')
  .max(WEBHOOK_EVENT_TYPES.length)
  .refine((a) => new Set(a).size === a.length, 'each event at most once');

export const CreateWebhookBody = z.object({ url: WebhookUrl, events: EventList }).strict();
export type CreateWebhookBody = z.infer<typeof CreateWebhookBody>;

export const UpdateWebhookBody = z
  .object({ url: WebhookUrl.optional(), events: EventList.optional(), enabled: z.boolean().optional() })
  .strict()
  .refine((b) => b.url !== undefined || b.events !== undefined || b.enabled !== undefined, 'nothing to change');
export type UpdateWebhookBody = z.infer<typeof UpdateWebhookBody>;

export const WebhookEndpoint = z.object({
  id: WebhookEndpointIdSchema,
  url: z.string(),
  events: z.array(WebhookEventType),
  enabled: z.boolean(),
  createdAt: isoDate,
  updatedAt: isoDate,
});
export type WebhookEndpoint = z.infer<typeof WebhookEndpoint>;

/** Returned by create and rotate only: the signing secret is never shown again. */
export const WebhookEndpointWithSecret = WebhookEndpoint.extend({
  /** `whsec_` + 64 hex digits; the whole string is the HMAC key. */
  secret: z.string().regex(/^whsec_[0-9a-f]{64}$/),
});
export type WebhookEndpointWithSecret = z.infer<typeof WebhookEndpointWithSecret>;

export const WebhookEndpointList = z.object({ items: z.array(WebhookEndpoint) });
export type WebhookEndpointList = z.infer<typeof WebhookEndpointList>;

export const WebhookDeliveryStatus = z.enum(['pending', 'retrying', 'succeeded', 'failed']);
export type WebhookDeliveryStatus = z.infer<typeof WebhookDeliveryStatus>;

export const WebhookDelivery = z.object({
  id: WebhookDeliveryIdSchema,
  endpointId: WebhookEndpointIdSchema,
  eventId: WebhookEventIdSchema,
  eventType: z.union([WebhookEventType, z.literal('ping')]),
  status: WebhookDeliveryStatus,
  /** Unit: HTTP attempts made so far. */
  attempts: z.number().int().min(0),
  /** The last attempt's HTTP status; null when it got none (refused, timed out, unreachable). */
  responseCode: z.number().int().nullable(),
  /** Unit: ms of the last attempt. */
  latencyMs: z.number().int().nullable(),
  /** Why the last attempt failed, in words; null when it succeeded or none ran yet. */
  error: z.string().nullable(),
  /** Earliest time of the next attempt; null when none follows. */
  nextAttemptAt: isoDate.nullable(),
  /** The delivery this one replays, if it is a replay. */
  replayOf: WebhookDeliveryIdSchema.nullable(),
  /** The exact body that was (or will be) sent. */
  payload: z.string(),
  createdAt: isoDate,
  updatedAt: isoDate,
});
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

export const WebhookDeliveriesQuery = z
  .object({
    /** The `nextCursor` of the previous page. */
    cursor: WebhookDeliveryIdSchema.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .strict();
export type WebhookDeliveriesQuery = z.infer<typeof WebhookDeliveriesQuery>;

export const WebhookDeliveryPage = z.object({
  items: z.array(WebhookDelivery),
  nextCursor: WebhookDeliveryIdSchema.nullable(),
});
export type WebhookDeliveryPage = z.infer<typeof WebhookDeliveryPage>;

// ── Payloads POSTed to an endpoint ─────────────────────────────────────────────────────────────

const envelope = <T extends string, D extends z.ZodTypeAny>(type: T, data: D) =>
  z.object({
    /** Unique per event; a replay or retry carries the same id, so receivers can deduplicate. */
    id: WebhookEventIdSchema,
    type: z.literal(type),
    /** When the event happened (not when this attempt was sent: that is the signature's t). */
    createdAt: isoDate,
    data,
  });

export const GenerationSucceededEvent = envelope(
  'generation.succeeded',
  z.object({ generationId: GenerationIdSchema, imageIds: z.array(ImageIdSchema) }),
);
export const GenerationFailedEvent = envelope(
  'generation.failed',
  z.object({ generationId: GenerationIdSchema, errorCode: z.enum(ERROR_CODE_LIST as [string, ...string[]]) }),
);
export const UsageThresholdEvent = envelope(
  'usage.threshold',
  z.object({
    /** Unit: percent of the period's limit reached (sent once per period each). */
    threshold: z.union([z.literal(80), z.literal(100)]),
    /** Unit: cloud images this period. */
    used: z.number().int(),
    limit: z.number().int(),
    plan: PlanId,
    periodStart: isoDate,
    periodEnd: isoDate,
  }),
);
export const PlanChangedEvent = envelope('plan.changed', z.object({ plan: PlanId }));
export const PingEvent = envelope('ping', z.object({ endpointId: WebhookEndpointIdSchema }));

export const WebhookEvent = z.discriminatedUnion('type', [
  GenerationSucceededEvent,
  GenerationFailedEvent,
  UsageThresholdEvent,
  PlanChangedEvent,
  PingEvent,
]);
export type WebhookEvent = z.infer<typeof WebhookEvent>;
/** An event before it has an id and time (the emitter adds them). */
export type WebhookEventData = {
  [E in WebhookEvent as E['type']]: { type: E['type']; data: E['data'] };
}[WebhookEvent['type']];
