// `npm run bench:cloud`: cloud generation throughput and dispatch latency, each against a reference
// measured in the same run on the same machine (see docs/BENCHMARKS.md, Cloud generation).
//
//  1. Images per second through the whole cloud path — POST /v1/generations → Postgres queue →
//     worker → engine host → S3 (s3rver) → image row → `generation.succeeded` on the user's socket —
//     as a fraction of the same engine host generating the same images (same params, same seeds,
//     same threads) directly. Goal ≥ 0.9.
//  2. Commit-to-worker-start latency p50/p99: from the enqueueing transaction (generations.created_at,
//     taken at its start, so an upper bound) to the worker's markRunning (started_at), both on the
//     database clock, with the worker idle before each job.
//
// Everything runs locally: embedded Postgres, cognito-local, s3rver, the API on a random port and
// one worker process (default concurrency: 2 slots, one generation on the engine at a time), its engine on a worker thread.
// Options: --size <px> (default 512), --steps <n> (default 25: the API's defaults), --images <n> per block (default 4),
//          --rounds <n> blocks (default 3), --latency <n> (default 40), --threads <n> (engine intra-op threads
//          for both sides; default physical cores), --json.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createEngineHost } from '../native/src/host/host.ts';
import { physicalCores } from '../native/src/providers/threads.ts';
import { parseConfig } from '../cloud/src/config.ts';
import { migrate } from '../cloud/src/db/migrate.ts';
import { startApi } from '../cloud/src/server.ts';
import { ensureUserPool, signUpConfirmed, startCognitoLocal } from '../cloud/src/stack/cognito.ts';
import { startPostgres } from '../cloud/src/stack/postgres.ts';
import { startLocalS3 } from '../cloud/src/storage/local-s3.ts';
import { freePort } from '../cloud/test/support/free-port.ts';
import { recordEvents, spawnWorker } from '../cloud/test/gen-support.ts';

const { values: flags } = parseArgs({
  options: {
    size: { type: 'string', default: '512' },
    steps: { type: 'string', default: '25' },
    images: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    latency: { type: 'string', default: '40' },
    threads: { type: 'string' },
    concurrency: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const size = Number(flags.size);
const steps = Number(flags.steps);
const images = Number(flags.images);
const rounds = Number(flags.rounds);
const latencyRuns = Number(flags.latency);
const threads = flags.threads ? Number(flags.threads) : physicalCores();
const log = (s: string) => process.stderr.write(`${s}\n`);
const REPO = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = path.join(REPO, 'native/fixtures/models/atelier-fixture-sd');

const root = mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-cloud-'));
chmodSync(root, 0o755); // as root, Postgres runs as `postgres` and must reach its data dir
const stops: (() => Promise<unknown>)[] = [];
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

try {
  log('starting Postgres, cognito-local and s3rver…');
  const [pgPort, cognitoPort] = [await freePort(), await freePort()];
  const postgres = await startPostgres({ dataDir: path.join(root, 'pg'), port: pgPort, durable: false });
  stops.push(() => postgres.stop());
  const cognito = await startCognitoLocal({ dataDir: path.join(root, 'cognito'), port: cognitoPort });
  stops.push(() => cognito.stop());
  const s3 = await startLocalS3({ directory: path.join(root, 's3'), bucket: 'atelier-bench' });
  stops.push(() => s3.close());
  const admin = new pg.Client({ connectionString: postgres.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE atelier');
  await admin.end();
  const pool = await ensureUserPool(cognito.endpoint);
  const config = parseConfig({
    NODE_ENV: 'development',
    LOG_LEVEL: 'silent',
    DATABASE_URL: postgres.url('atelier'),
    COGNITO_REGION: 'local',
    COGNITO_ENDPOINT: cognito.endpoint,
    COGNITO_USER_POOL_ID: pool.userPoolId,
    COGNITO_CLIENT_ID: pool.clientId,
    COGNITO_ISSUER: `${cognito.issuerDomain}/${pool.userPoolId}`,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    WORKER_ENGINE_THREADS: String(threads),
    JANITOR_INTERVAL_SECONDS: '0',
    RATE_LIMIT_USER_PER_MINUTE: '100000',
    RATE_LIMIT_IP_PER_MINUTE: '100000',
  });
  await migrate(config);
  const api = await startApi(config, { logger: false, port: 0 });
  stops.push(() => api.close());
  // The worker is its own process, as in production (`npm run cloud:worker`): its event loop serves
  // only the queue, progress writes and uploads, not this process's API, s3rver and socket client.
  const worker = await spawnWorker({
    NODE_ENV: 'development',
    LOG_LEVEL: 'silent',
    DATABASE_URL: config.database.url,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    WORKER_ENGINE_THREADS: String(threads),
    WORKER_CONCURRENCY: flags.concurrency,
    JANITOR_INTERVAL_SECONDS: '0',
  });
  stops.push(async () => {
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
  const adminPool = new pg.Pool({ connectionString: config.database.url, max: 2 });
  stops.push(() => adminPool.end());

  const user = await signUpConfirmed(cognito.endpoint, pool, `bench-${Date.now()}@example.test`, 'Atelier-Bench-1');
  const headers = { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' };
  const me = await fetch(`${api.url}/v1/me`, { headers });
  if (!me.ok) throw new Error(`GET /v1/me: ${me.status}`);
  // Enough monthly quota for the run, whatever its size (an operator's adjustment, as `admin set-usage` does).
  await adminPool.query(
    `INSERT INTO subscriptions (user_id, plan, status) VALUES ($1, 'pro', 'active')
     ON CONFLICT (user_id) DO UPDATE SET plan = 'pro', status = 'active'`,
    [user.sub],
  );
  const events = await recordEvents(api.url, user.accessToken);
  stops.push(async () => events.close());

  const submit = async (body: Record<string, unknown>): Promise<string> => {
    const res = await fetch(`${api.url}/v1/generations`, { method: 'POST', headers, body: JSON.stringify(body) });
    if (res.status !== 202) throw new Error(`POST /v1/generations: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  };
  const succeeded = (id: string) =>
    events
      .waitFor(
        (e) => (e.type === 'generation.succeeded' || e.type === 'generation.failed') && e.generationId === id,
        300_000,
      )
      .then((e) => {
        if (e.type !== 'generation.succeeded') throw new Error(`generation ${id} failed: ${JSON.stringify(e)}`);
      });
  const params = (seed: number) => ({
    prompt: 'a lighthouse on a cliff at dusk',
    width: size,
    height: size,
    steps,
    guidance: 7.5,
    scheduler: 'euler_a' as const,
    seed,
  });

  // Warm both paths: the worker's engine host and the reference host load the model once.
  log('warming up…');
  await succeeded(await submit({ ...params(1), steps: 1, width: 64, height: 64 }));
  const reference = createEngineHost({ threads, provider: 'cpu' });
  stops.push(() => reference.close());
  await reference.generate(MODEL_DIR, { ...params(1), steps: 1, width: 64, height: 64, model: 'atelier-fixture-sd' });

  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const directRates: number[] = [];
  const cloudRates: number[] = [];
  const blockRatios: number[] = [];
  // The machine is shared, so load drifts during a run: the two paths alternate in small blocks
  // and each block's ratio compares runs made seconds apart.
  for (let round = 0; round < rounds; round++) {
    // Reference: the same engine host generating the same images directly, one after another.
    let t0 = performance.now();
    for (let i = 0; i < images; i++)
      await reference.generate(MODEL_DIR, { ...params(1000 + i), model: 'atelier-fixture-sd' });
    const direct = images / ((performance.now() - t0) / 1000);
    directRates.push(direct);

    // Cloud: the same images as generations of one image each, kept three deep (a Pro user's
    // allowance is 8) so the worker always has the next job waiting, as a busy fleet does.
    t0 = performance.now();
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < images; i++) {
      if (inFlight.size >= 3) await Promise.race(inFlight);
      const id = await submit(params(1000 + i));
      const p: Promise<void> = succeeded(id).then(() => void inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    const cloud = images / ((performance.now() - t0) / 1000);
    cloudRates.push(cloud);
    blockRatios.push(cloud / direct);
    log(
      `block ${round + 1}/${rounds}: direct ${direct.toFixed(3)} img/s, cloud ${cloud.toFixed(3)} img/s, ratio ${(cloud / direct).toFixed(3)}`,
    );
  }
  const spans = await adminPool.query<{ run: number; gap: number | null }>(
    `SELECT extract(epoch FROM finished_at - started_at) * 1000 AS run,
            extract(epoch FROM started_at - lag(finished_at) OVER (ORDER BY started_at)) * 1000 AS gap
       FROM generations WHERE user_id = $1 AND status = 'succeeded' AND (params->>'steps')::int = $2`,
    [user.sub, steps],
  );
  const workerMs = spans.rows.map((r) => Number(r.run));

  // Dispatch latency: one tiny job at a time into an idle worker.
  const latencies: number[] = [];
  for (let i = 0; i < latencyRuns; i++) {
    const id = await submit({ ...params(5000 + i), width: 64, height: 64, steps: 1 });
    await succeeded(id);
    const r = await adminPool.query<{ ms: number }>(
      `SELECT extract(epoch FROM (started_at - created_at)) * 1000 AS ms FROM generations WHERE id = $1`,
      [id],
    );
    latencies.push(Number(r.rows[0]!.ms));
  }
  const stored = await adminPool.query<{ n: number }>('SELECT count(*)::int AS n FROM images');

  const directMean = sum(directRates) / rounds;
  const cloudMean = sum(cloudRates) / rounds;
  const result = {
    machine: { cores: os.cpus().length, threads, cpu: os.cpus()[0]?.model ?? 'unknown' },
    workload: {
      model: 'atelier-fixture-sd',
      size,
      steps,
      imagesPerBlock: images,
      blocks: rounds,
      workerConcurrency: Number(flags.concurrency),
    },
    throughput: {
      directImagesPerSecond: Number(directMean.toFixed(3)),
      cloudImagesPerSecond: Number(cloudMean.toFixed(3)),
      /** Median over blocks of (cloud images/s ÷ direct images/s measured just before). */
      ratio: Number(pct(blockRatios, 50).toFixed(3)),
      ratioOfMeans: Number((cloudMean / directMean).toFixed(3)),
      blockRatios: blockRatios.map((r) => Number(r.toFixed(3))),
      goal: 0.9,
      /** Claim to markSucceeded per job, including waiting for the engine behind the other slot. */
      workerMsPerJobP50: Number(pct(workerMs, 50).toFixed(1)),
    },
    commitToStartMs: {
      runs: latencyRuns,
      p50: Number(pct(latencies, 50).toFixed(1)),
      p99: Number(pct(latencies, 99).toFixed(1)),
      max: Number(Math.max(...latencies).toFixed(1)),
    },
    imagesStored: stored.rows[0]!.n,
  };
  if (flags.json) console.log(JSON.stringify(result, null, 2));
  else
    console.log(`Cloud generation (${size}×${size}, ${steps} steps, ${images} images × ${rounds} blocks, ${threads} threads)
  engine host directly     ${result.throughput.directImagesPerSecond} images/s
  API → queue → worker → S3 ${result.throughput.cloudImagesPerSecond} images/s
  ratio                    ${result.throughput.ratio}  (goal ≥ 0.9; median of ${rounds} blocks: ${result.throughput.blockRatios.join(', ')})
  commit → worker start    p50 ${result.commitToStartMs.p50} ms, p99 ${result.commitToStartMs.p99} ms (${latencyRuns} jobs, idle worker)`);
} finally {
  for (const stop of stops.reverse()) await stop().catch((e: unknown) => log(`cleanup: ${String(e)}`));
  rmSync(root, { recursive: true, force: true });
}
