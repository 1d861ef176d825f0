/**
 * Cloud generation's services for the local stack (`npm run stack`): s3rver with the bucket
 * created (before the API, which needs S3_*), and one worker on the fixture models (after it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createModelCatalogue } from '../catalogue/catalogue.ts';
import { loadConfig } from '../config.ts';
import type { StackService } from '../stack/stack.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION, startLocalS3 } from '../storage/local-s3.ts';
import { S3ObjectStore } from '../storage/s3-object-store.ts';
import { LOCAL_S3_PORT } from './gen-config.ts';
import { startWorker } from './main.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

export const s3Service: StackService = {
  name: 's3',
  async start(ctx) {
    const bucket = ctx.env.S3_BUCKET ?? 'atelier-local';
    if (ctx.env.S3_ENDPOINT) {
      // An S3 the operator runs (MinIO, a real bucket): only make sure the bucket exists.
      const config = loadConfig(ctx.env).gen.s3;
      const store = new S3ObjectStore(config);
      try {
        await store.ensureBucket();
      } finally {
        store.close();
      }
      ctx.stack.s3 = {
        endpoint: config.endpoint,
        bucket: config.bucket,
        region: config.region,
        forcePathStyle: config.forcePathStyle,
      };
      ctx.log('s3', `using S3_ENDPOINT ${config.endpoint}, bucket ${config.bucket}`);
      return { stop: async () => {} };
    }
    const port = Number(ctx.env.S3_PORT ?? LOCAL_S3_PORT);
    const s3 = await startLocalS3({ directory: path.join(ctx.dataDir, 's3'), bucket, port });
    Object.assign(ctx.env, {
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: bucket,
      S3_REGION: LOCAL_S3_REGION,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    });
    ctx.stack.s3 = { endpoint: s3.endpoint, bucket, region: LOCAL_S3_REGION, forcePathStyle: true };
    ctx.log('s3', `s3rver on ${s3.endpoint}, bucket ${bucket}, data in ${s3.directory}`);
    return { stop: () => s3.close() };
  },
};

export const workerService: StackService = {
  name: 'worker',
  async start(ctx) {
    const config = loadConfig(ctx.env);
    const catalogue = createModelCatalogue(config.gen.catalogue, { modelsRoot: config.gen.modelsRoot });
    const missing = catalogue.list().filter((m) => !existsSync(path.join(m.dir, 'model_index.json')));
    const fixtures = path.join(REPO_ROOT, 'native/fixtures/models');
    if (missing.some((m) => m.dir.startsWith(fixtures))) {
      ctx.log('worker', 'building the fixture models (npm run models:fixture)…');
      const r = spawnSync(
        process.execPath,
        [path.join(REPO_ROOT, 'native/scripts/build-fixture-models.ts'), '--if-missing'],
        {
          cwd: REPO_ROOT,
          stdio: 'inherit',
        },
      );
      if (r.status !== 0) throw new Error('building the fixture models failed');
    }
    for (const m of catalogue.list())
      if (!existsSync(path.join(m.dir, 'model_index.json')))
        ctx.log('worker', `warning: model ${m.id} has no folder at ${m.dir}; its jobs will fail`);
    const worker = await startWorker(config);
    ctx.stack.worker = {
      concurrency: config.gen.worker.concurrency,
      models: catalogue.list().map((m) => ({ id: m.id, plans: m.plans, dir: m.dir })),
    };
    ctx.log(
      'worker',
      `worker on ${catalogue
        .list()
        .map((m) => m.id)
        .join(', ')} (concurrency ${config.gen.worker.concurrency})`,
    );
    return { stop: () => worker.stop() };
  },
};
