/**
 * The API process: wires the real collaborators, listens, and shuts down gracefully — stop
 * accepting, finish in-flight requests (bounded by SHUTDOWN_GRACE_SECONDS), then close the
 * queue, the event listener and the pools. `startApi` is also used by the local stack.
 */
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp, type AppDeps } from './app.ts';
import { createModelCatalogue } from './catalogue/catalogue.ts';
import { loadConfig, type Config } from './config.ts';
import { createPool } from './db/pool.ts';
import { EventHub } from './events/hub.ts';
import { createLogger } from './logger.ts';
import { PgBossJobQueue } from './queue/pg-boss-job-queue.ts';
import { cognitoIdentity, s3UserObjects, stripeEraser } from './account/peers.ts';
import { startDeletionWorker } from './account/worker.ts';

export interface RunningApi {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startApi(
  config: Config,
  opts: { logger?: Logger | false; port?: number; extend?: Partial<AppDeps> } = {},
): Promise<RunningApi> {
  const logger = opts.logger === undefined ? createLogger(config) : opts.logger;
  const pool = createPool(config, 'app');
  const systemPool = createPool(config, 'system', { max: 4 });
  const queue = new PgBossJobQueue({
    connectionString: config.database.appUrl,
    queue: config.queue,
    mode: 'producer',
    onError: (err) => logger && logger.error({ err }, 'queue error'),
  });
  const events = new EventHub(config.database.appUrl, (msg, err) => logger && logger.warn({ err }, msg));
  await queue.start();
  await events.start();
  // The catalogue also gates POST /v1/generations: unknown or forbidden models are MODEL_NOT_AVAILABLE.
  const catalogue = createModelCatalogue(config.gen.catalogue, { modelsRoot: config.gen.modelsRoot });
  const app = await buildApp({ config, pool, systemPool, queue, events, logger, catalogue, ...opts.extend });
  // Account deletions run here (issue 14): this process holds the Stripe key, the bucket and
  // Cognito's admin right; pg-boss hands each job to one replica.
  const deletionObjects = s3UserObjects(config.gen.s3);
  const deletions = await startDeletionWorker({
    connectionString: config.database.systemUrl,
    systemPool,
    billing: stripeEraser(config.billing),
    identity: cognitoIdentity(config.cognito),
    objects: deletionObjects,
    presignSeconds: config.gen.s3.presignSeconds,
    ...(logger ? { log: logger.child({ scope: 'account-deletion' }) } : {}),
    onError: (err) => logger && logger.error({ err }, 'account deletion queue error'),
  });
  const address = await app.listen({ host: config.api.host, port: opts.port ?? config.api.port });
  let closing: Promise<void> | null = null;
  return {
    app,
    url: address.replace('[::1]', '127.0.0.1'),
    close() {
      closing ??= (async () => {
        const timer = setTimeout(() => app.server.closeAllConnections(), config.shutdownGraceMs);
        await app.close();
        clearTimeout(timer);
        await deletions.stop();
        deletionObjects.close();
        await queue.stop(1000);
        await events.stop();
        await Promise.all([pool.end(), systemPool.end()]);
      })();
      return closing;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = loadConfig();
  const api = await startApi(config);
  // Where the request limits are counted: 'redis' (shared by every replica) or 'memory' (this process only).
  api.app.log.info(
    { url: api.url, limitsStore: api.app.limits.store, errorTracking: api.app.errorTracker.enabled },
    'api listening',
  );
  const stop = (signal: string) => {
    api.app.log.info({ signal }, 'shutting down');
    api.close().then(
      () => process.exit(0),
      (err) => {
        api.app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
