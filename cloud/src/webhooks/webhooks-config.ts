/**
 * Webhooks' part of the cloud configuration (spread into config.ts's EnvSchema): the key that
 * encrypts signing secrets at rest, the SSRF switch, and the delivery limits.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** A fixed key for development and tests only; production refuses it (and refuses no key). */
export const DEVELOPMENT_SECRET_KEY = createHash('sha256').update('atelier-webhooks-development-only').digest('base64');

const key = z
  .string()
  .refine((s) => Buffer.from(s, 'base64').length === 32, 'must be 32 random bytes in base64 (openssl rand -base64 32)');
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');

export const WEBHOOKS_ENV = {
  /** 32 bytes, base64: encrypts endpoint signing secrets at rest (AES-256-GCM). Required in production. */
  WEBHOOKS_SECRET_KEY: key.optional(),
  /** The key before the last rotation: still decrypts secrets written under it (docs/OPERATIONS.md). */
  WEBHOOKS_SECRET_KEY_PREVIOUS: key.optional(),
  /**
   * true: endpoints on private, loopback and link-local addresses and plain http are allowed
   * (the local stack and tests with a receiver on 127.0.0.1). Refused in production.
   */
  WEBHOOKS_ALLOW_PRIVATE_TARGETS: bool.default(false),
  /** Unit: ms for one attempt, connect to the end of the (capped) response. */
  WEBHOOKS_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
  /** Attempts after the first before a delivery is marked failed. */
  WEBHOOKS_RETRY_LIMIT: z.coerce.number().int().min(0).max(20).default(8),
  /** Unit: seconds; the first retry waits 1–2× this, each next one twice as long (capped at 6 h). */
  WEBHOOKS_RETRY_DELAY_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** Deliveries one worker process sends at once. */
  WEBHOOKS_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(64),
  /** Deliveries of one user in flight at once across all workers (a slow receiver holds only these). */
  WEBHOOKS_USER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
};

export const WebhooksEnvSchema = z.object(WEBHOOKS_ENV);
type WebhooksEnv = z.output<typeof WebhooksEnvSchema>;

export interface WebhooksConfig {
  /** Current key first; decrypt tries each. Empty in production without WEBHOOKS_SECRET_KEY (boot refuses). */
  secretKeys: Buffer[];
  allowPrivateTargets: boolean;
  /** https only (production). */
  requireHttps: boolean;
  /** Unit: ms. */
  timeoutMs: number;
  retryLimit: number;
  /** Unit: seconds. */
  retryDelaySeconds: number;
  concurrency: number;
  userConcurrency: number;
}

export function toWebhooksConfig(
  e: WebhooksEnv,
  ctx: { production: boolean },
  fail: (message: string) => never,
): WebhooksConfig {
  const problems: string[] = [];
  if (ctx.production) {
    // A missing key is refused by the processes that use it (the API and the worker, at boot:
    // createSecretBox), not here: the migrator and the queue-metrics sidecar never get it.
    if (e.WEBHOOKS_SECRET_KEY === DEVELOPMENT_SECRET_KEY)
      problems.push('  WEBHOOKS_SECRET_KEY: the development key is public; production needs its own');
    if (e.WEBHOOKS_ALLOW_PRIVATE_TARGETS)
      problems.push('  WEBHOOKS_ALLOW_PRIVATE_TARGETS: development only; production never calls private addresses');
  }
  if (problems.length) fail(`Invalid configuration:\n${problems.join('\n')}`);
  const current = e.WEBHOOKS_SECRET_KEY ?? (ctx.production ? undefined : DEVELOPMENT_SECRET_KEY);
  const keys = [current, e.WEBHOOKS_SECRET_KEY_PREVIOUS].filter((k): k is string => k !== undefined);
  return {
    // Without a current key the previous one must not seal new secrets: no keys at all then.
    secretKeys: current ? keys.map((k) => Buffer.from(k, 'base64')) : [],
    allowPrivateTargets: e.WEBHOOKS_ALLOW_PRIVATE_TARGETS,
    requireHttps: ctx.production,
    timeoutMs: e.WEBHOOKS_TIMEOUT_MS,
    retryLimit: e.WEBHOOKS_RETRY_LIMIT,
    retryDelaySeconds: e.WEBHOOKS_RETRY_DELAY_SECONDS,
    concurrency: e.WEBHOOKS_CONCURRENCY,
    userConcurrency: e.WEBHOOKS_USER_CONCURRENCY,
  };
}
