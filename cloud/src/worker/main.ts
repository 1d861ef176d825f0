/**
 * The GPU worker process (`npm run cloud:worker`, and one per `npm run stack`): takes generation
 * jobs from the queue, runs them on a warm engine, stores the images in S3 and their rows in
 * Postgres. SIGTERM/SIGINT: stop taking jobs, let the running ones finish within
 * SHUTDOWN_GRACE_SECONDS, hand back any still running (the queue retries them elsewhere), exit 0.
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { createModelCatalogue } from '../catalogue/catalogue.ts';
import { loadConfig } from '../config.ts';
import type { Config } from '../config.ts';
import { createPool } from '../db/pool.ts';
import { createLogger } from '../logger.ts';
import { runGenerations } from '../queue/generation-runner.ts';
import type { JobQueue } from '../queue/job-queue.ts';
import { PgBossJobQueue } from '../queue/pg-boss-job-queue.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { S3ObjectStore } from '../storage/s3-object-store.ts';
import { engineHostLoader } from './engine-host-loader.ts';
import { createEnginePool } from './engine-pool.ts';
import type { EnginePool, ModelLoader } from './engine-pool.ts';
import { createImageGenerator } from './generate-images.ts';
import { startWorkerPeriodicWork } from './periodic.ts';
import { createWebhookEmitter, pgBossWebhookJobs } from '../webhooks/emitter.ts';
import { startWebhookWorker } from '../webhooks/worker.ts';

export interface RunningWorker {
  engines: EnginePool;
  /** Stops taking jobs, waits up to `graceMs` for running ones, hands back the rest, closes everything. */
  stop(graceMs?: number): Promise<void>;
}

export interface WorkerOptions {
  logger?: Logger;
  store?: ObjectStore;
  /** Default: the off-thread engine host. */
  loader?: ModelLoader;
}

export async function startWorker(config: Config, opts: WorkerOptions = {}): Promise<RunningWorker> {
  const log = (opts.logger ?? createLogger(config)).child({ scope: 'worker' });
  const gen = config.gen;
  const pool = createPool(config, 'system', { max: Math.max(4, gen.worker.concurrency * 2 + 2) });
  const store = opts.store ?? new S3ObjectStore(gen.s3);
  const hosted = opts.loader ? null : engineHostLoader({ threads: gen.worker.engineThreads || undefined });
  const engines = createEnginePool(opts.loader ?? hosted!.load);
  const catalogue = createModelCatalogue(gen.catalogue, { modelsRoot: gen.modelsRoot });
  const queue = new PgBossJobQueue({
    connectionString: config.database.systemUrl,
    queue: config.queue,
    mode: 'consumer',
    onError: (err) => log.error({ err }, 'queue error'),
  });
  await queue.start();
  // Handlers still running (including the runner's bookkeeping after generate returns), so that
  // shutdown waits for them before closing the pool they write with.
  const inflight = new Set<Promise<void>>();
  const tracked: JobQueue = {
    start: () => queue.start(),
    enqueue: (tx, job, o) => queue.enqueue(tx, job, o),
    cancel: (tx, jobId) => queue.cancel(tx, jobId),
    stop: (graceMs) => queue.stop(graceMs),
    work: (handler, o) =>
      queue.work((job, ctx) => {
        const p = handler(job, ctx);
        const settled = p.then(
          () => undefined,
          () => undefined,
        );
        inflight.add(settled);
        void settled.then(() => inflight.delete(settled));
        return p;
      }, o),
  };
  const shutdown = new AbortController();
  await runGenerations({
    queue: tracked,
    pool,
    concurrency: gen.worker.concurrency,
    generate: createImageGenerator({ pool, store, engines, catalogue, shutdown: shutdown.signal }),
    log: (msg, extra) => log.info(extra ?? {}, msg),
    webhooks: createWebhookEmitter(pgBossWebhookJobs(queue.boss, config.webhooks)),
  });
  // Webhook deliveries (issue 16): their own consumer, so a slow receiver never holds a GPU slot.
  const webhookLog = log.child({ scope: 'webhooks' });
  // Its own small pool: a burst of deliveries must not queue the generation bookkeeping behind it.
  const webhookPool = createPool(config, 'system', { max: 8 });
  const webhooks = await startWebhookWorker({
    config: config.webhooks,
    connectionString: config.database.systemUrl,
    systemPool: webhookPool,
    log: { info: (o, m) => webhookLog.info(o, m), warn: (o, m) => webhookLog.warn(o, m) },
    onError: (err) => webhookLog.error({ err }, 'webhook queue error'),
  });
  // The image janitor and the upload sweep (issue 13): pg-boss schedules, each occurrence taken by
  // one worker of the cluster (docs/decisions/0102), not a timer in every worker.
  const periodic = await startWorkerPeriodicWork({
    config,
    pool,
    store,
    onError: (err) => log.error({ err }, 'periodic: queue error'),
    log: (obj, msg) => log.info(obj, msg),
  });
  log.info({ concurrency: gen.worker.concurrency, models: catalogue.list().map((m) => m.id) }, 'worker ready');

  let stopping: Promise<void> | null = null;
  return {
    engines,
    stop(graceMs = config.shutdownGraceMs) {
      stopping ??= (async () => {
        // Jobs still running shortly before the grace period ends are handed back by us — marked
        // queued and failed into pg-boss's retry — rather than left to the queue's own timeout.
        const handBack = setTimeout(() => shutdown.abort(), Math.max(0, graceMs - 500));
        await queue.stop(graceMs);
        clearTimeout(handBack);
        shutdown.abort();
        await Promise.all([...inflight]);
        await periodic?.stop();
        await webhooks.stop();
        await webhookPool.end();
        await engines.dispose();
        await hosted?.host.close();
        if (!opts.store) store.close();
        await pool.end();
      })();
      return stopping;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = loadConfig();
  const logger = createLogger(config);
  const worker = await startWorker(config, { logger });
  // The line test harnesses and the stack wait for.
  process.stdout.write('WORKER READY\n');
  const stop = (signal: string) => {
    logger.info({ signal }, 'worker shutting down');
    worker.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'worker shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
