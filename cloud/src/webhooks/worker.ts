/**
 * The delivery worker: a pg-boss consumer of the webhook_deliveries queue, connected as
 * atelier_system, started by the worker process (worker/main.ts). Each job is one delivery; an
 * attempt that fails throws so pg-boss retries it with exponential backoff and jitter
 * (retryBackoff), up to WEBHOOKS_RETRY_LIMIT; every attempt is recorded on the delivery row.
 *
 * Isolation: WEBHOOKS_CONCURRENCY deliveries run at once per process, at most
 * WEBHOOKS_USER_CONCURRENCY of them for one user (pg-boss groups), and each is cut off after
 * WEBHOOKS_TIMEOUT_MS — a hanging receiver holds one slot of its own user for that long and
 * delays no one else.
 */
import { WEBHOOK_SIGNATURE_HEADER } from '@atelier/common';
import type { PgBoss} from 'pg-boss';
import { type JobResult, type JobWithMetadata } from 'pg-boss';
import type { Pool } from '../db/pool.ts';
import { runtimeBoss } from '../queue/pg-boss-job-queue.ts';
import { WEBHOOK_QUEUE, type WebhookJob } from './emitter.ts';
import { abandonDelivery, loadDeliveryWork, recordAttempt, resealSecret } from './repository.ts';
import { createSecretBox } from './secret-box.ts';
import { createAgents, sendAttempt, type AttemptResult } from './send.ts';
import { signatureHeader } from './signing.ts';
import { resolveTarget, type Resolver } from './ssrf.ts';
import type { WebhooksConfig } from './webhooks-config.ts';

export interface WebhookWorkerDeps {
  config: WebhooksConfig;
  /** atelier_system's URL: pg-boss reads the jobs' payloads. */
  connectionString: string;
  systemPool: Pool;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  onError?: (err: Error) => void;
  /** DNS (tests answer with chosen addresses). Default: the system resolver. */
  resolve?: Resolver;
  /** Unit: seconds between polls when no NOTIFY arrives. Default 1. */
  pollingIntervalSeconds?: number;
  /** Sent as User-Agent. */
  userAgent?: string;
}

/** Jobs one slot fetches at once (they are delivered concurrently). */
const WEBHOOK_BATCH = 2;

export interface WebhookWorker {
  boss: PgBoss;
  stop(): Promise<void>;
}

/** One delivery attempt, recorded. Returns whether pg-boss should retry it (throw). */
export async function deliverOnce(
  deps: Pick<WebhookWorkerDeps, 'config' | 'systemPool' | 'resolve' | 'userAgent' | 'log'> & {
    agents?: ReturnType<typeof createAgents>;
  },
  deliveryId: string,
  attempt: { retryCount: number; retryLimit: number },
): Promise<'succeeded' | 'retry' | 'failed' | 'gone'> {
  const { config, systemPool } = deps;
  const box = createSecretBox(config.secretKeys);
  const work = await loadDeliveryWork(systemPool, deliveryId);
  if (!work) return 'gone'; // the endpoint (or the account) was deleted
  if (work.status === 'succeeded' || work.status === 'failed') return work.status;
  if (!work.enabled) {
    await abandonDelivery(systemPool, deliveryId, 'endpoint disabled');
    return 'failed';
  }
  const lastAttempt = attempt.retryCount >= attempt.retryLimit;
  let result: AttemptResult;
  try {
    // Resolved and checked again now: the name may point elsewhere than when it was saved.
    const target = await resolveTarget(
      work.url,
      { allowPrivateTargets: config.allowPrivateTargets, requireHttps: config.requireHttps },
      deps.resolve,
    );
    const { secret, stale } = box.open(work.endpoint_id, work.secret_encrypted);
    if (stale) await resealSecret(systemPool, work.endpoint_id, box.seal(work.endpoint_id, secret));
    const t = Math.floor(Date.now() / 1000);
    result = await sendAttempt(target, work.payload, {
      timeoutMs: config.timeoutMs,
      ...(deps.agents ? { agents: deps.agents } : {}),
      headers: {
        'content-type': 'application/json',
        'user-agent': deps.userAgent ?? 'Atelier-Webhooks/1',
        [WEBHOOK_SIGNATURE_HEADER]: signatureHeader(secret, work.payload, t),
        'atelier-event-id': work.event_id,
        'atelier-event-type': work.event_type,
        'atelier-delivery-id': work.id,
      },
    });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'WEBHOOK_TARGET_FORBIDDEN' || code === 'WEBHOOK_URL_INVALID') {
      // Not a transient failure: the address is not one Atelier calls. No retry.
      deps.log?.warn({ deliveryId, code }, 'webhook target refused');
      await recordAttempt(systemPool, deliveryId, {
        status: 'failed',
        responseCode: null,
        latencyMs: null,
        error:
          code === 'WEBHOOK_TARGET_FORBIDDEN'
            ? 'refused: the URL resolves to a non-public address'
            : String((e as Error).message),
        nextAttemptAt: null,
      });
      return 'failed';
    }
    result = { ok: false, status: null, latencyMs: 0, error: (e as Error).message };
  }
  if (result.ok) {
    await recordAttempt(systemPool, deliveryId, {
      status: 'succeeded',
      responseCode: result.status,
      latencyMs: result.latencyMs,
      error: null,
      nextAttemptAt: null,
    });
    return 'succeeded';
  }
  // pg-boss waits retryDelay × 2^retryCount × (1 + random) before the next try: record the earliest.
  const wait = Math.min(config.retryDelaySeconds * 2 ** attempt.retryCount, 6 * 3600);
  await recordAttempt(systemPool, deliveryId, {
    status: lastAttempt ? 'failed' : 'retrying',
    responseCode: result.status,
    latencyMs: result.latencyMs,
    error: result.error,
    nextAttemptAt: lastAttempt ? null : new Date(Date.now() + wait * 1000),
  });
  return lastAttempt ? 'failed' : 'retry';
}

export async function startWebhookWorker(deps: WebhookWorkerDeps): Promise<WebhookWorker> {
  const boss = runtimeBoss({
    connectionString: deps.connectionString,
    application_name: 'atelier-webhooks',
    max: 16,
    supervise: true,
    useListenNotify: true,
  });
  createSecretBox(deps.config.secretKeys); // refuses to start without a key (production)
  boss.on('error', (err) => deps.onError?.(err as Error));
  await boss.start();
  const agents = createAgents();
  const poll = deps.pollingIntervalSeconds ?? 1;
  // Slots fetch a few jobs at a time and deliver them side by side: with one job per fetch, each
  // slot waits a polling interval between jobs (about one delivery per slot per second). Each job
  // settles on its own (perJobResults): a failed attempt fails only its job, which pg-boss retries.
  const batchSize = Math.min(WEBHOOK_BATCH, deps.config.concurrency);
  await boss.work(
    WEBHOOK_QUEUE,
    {
      includeMetadata: true,
      perJobResults: true,
      batchSize,
      burstWhenBatchFull: true,
      localConcurrency: Math.max(1, Math.ceil(deps.config.concurrency / batchSize)),
      groupConcurrency: deps.config.userConcurrency,
      pollingIntervalSeconds: poll,
      notifyPollingIntervalSeconds: Math.max(poll, 1),
    },
    async (jobs: JobWithMetadata<WebhookJob>[]): Promise<JobResult[]> =>
      Promise.all(
        jobs.map(async (job): Promise<JobResult> => {
          try {
            const outcome = await deliverOnce({ ...deps, agents }, job.data.deliveryId, {
              retryCount: job.retryCount,
              retryLimit: job.retryLimit,
            });
            return { id: job.id, status: outcome === 'retry' ? 'failed' : 'completed' };
          } catch (err) {
            // The database, not the receiver: retried like a failed attempt.
            deps.onError?.(err as Error);
            return { id: job.id, status: 'failed', output: { message: (err as Error).message } };
          }
        }),
      ),
  );
  return {
    boss,
    async stop() {
      await boss.stop({ graceful: true, timeout: deps.config.timeoutMs + 1000, close: true });
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
