/**
 * The webhook payloads in the OpenAPI document. The document is OpenAPI 3.0 (whose generator the
 * routes rely on), which has no `webhooks` section, so the payloads are component schemas and an
 * `x-webhooks` extension in the shape of 3.1's `webhooks` (Redoc renders it).
 */
import {
  GenerationFailedEvent,
  GenerationSucceededEvent,
  PingEvent,
  PlanChangedEvent,
  UsageThresholdEvent,
  WEBHOOK_SIGNATURE_HEADER,
} from '@atelier/common';
import { z } from 'zod';

const EVENTS = {
  'generation.succeeded': ['WebhookGenerationSucceeded', GenerationSucceededEvent],
  'generation.failed': ['WebhookGenerationFailed', GenerationFailedEvent],
  'usage.threshold': ['WebhookUsageThreshold', UsageThresholdEvent],
  'plan.changed': ['WebhookPlanChanged', PlanChangedEvent],
  ping: ['WebhookPing', PingEvent],
} as const;

export function webhookPayloadSchemas(): Record<string, Record<string, never>> {
  return Object.fromEntries(
    Object.values(EVENTS).map(([name, schema]) => {
      const { $schema: _drop, ...json } = z.toJSONSchema(schema, { target: 'openapi-3.0' }) as Record<string, unknown>;
      return [name, json as Record<string, never>];
    }),
  );
}

export function webhooksOpenApi(): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(EVENTS).map(([type, [name]]) => [
      type,
      {
        post: {
          summary: `${type} (sent to your endpoint)`,
          description: 'Verify the signature before trusting the body (docs/WEBHOOKS.md). Answer 2xx within 10 s.',
          parameters: [
            {
              name: WEBHOOK_SIGNATURE_HEADER,
              in: 'header',
              required: true,
              schema: { type: 'string', example: 't=1764748800,v1=5f2b…' },
              description: 't=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>',
            },
          ],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } },
          },
          responses: { '200': { description: 'Any 2xx acknowledges the delivery; anything else is retried.' } },
        },
      },
    ]),
  );
}
