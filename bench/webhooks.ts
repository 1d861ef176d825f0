/**
 * `npm run bench:webhooks`: webhook deliveries per second through the real path — delivery rows
 * and pg-boss jobs emitted in transactions, the delivery worker (SSRF check, secret unsealing,
 * HMAC signing, POST, attempt recorded) — with 100 endpoints of 100 users, 10 of them slow, against
 * a reference measured in the same run: plain `fetch` POSTs of the same bodies to the same
 * receivers with the same concurrency and no database.
 *
 * Also reported: when the 90 fast endpoints' deliveries were all done, in both runs — the slow
 * receivers must not hold the fast ones back (per-user concurrency caps the slots they take).
 * Options: --per-endpoint N (deliveries per endpoint, default 10), --slow-ms N (default 1000).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { newId } from '@atelier/common';
import Fastify from 'fastify';
import { PgBoss } from 'pg-boss';
import { parseConfig } from '../cloud/src/config.ts';
import { migrate } from '../cloud/src/db/migrate.ts';
import { createPool } from '../cloud/src/db/pool.ts';
import { withSystemTx } from '../cloud/src/db/tx.ts';
import { PGBOSS_SCHEMA } from '../cloud/src/queue/pg-boss-job-queue.ts';
import { startPostgres } from '../cloud/src/stack/postgres.ts';
import { createWebhookEmitter, pgBossWebhookJobs } from '../cloud/src/webhooks/emitter.ts';
import { createSecretBox, newSigningSecret } from '../cloud/src/webhooks/secret-box.ts';
import { signatureHeader } from '../cloud/src/webhooks/signing.ts';
import { startWebhookWorker } from '../cloud/src/webhooks/worker.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ENDPOINTS = 100;
const SLOW = 10;
const PER_ENDPOINT = arg('per-endpoint', 10);
const SLOW_MS = arg('slow-ms', 1000);
const TOTAL = ENDPOINTS * PER_ENDPOINT;

const freePort = async () => {
  const s = Fastify();
  await s.listen({ port: 0, host: '127.0.0.1' });
  const port = (s.server.address() as { port: number }).port;
  await s.close();
  return port;
};

// Receivers: /fast/<i> answers at once, /slow/<i> after SLOW_MS.
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url?.startsWith('/slow/')) setTimeout(() => res.writeHead(204).end(), SLOW_MS);
    else res.writeHead(204).end();
  });
});
receiver.keepAliveTimeout = 30_000;
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
const urlOf = (i: number) => `${base}/${i < SLOW ? 'slow' : 'fast'}/${i}`;

const tmp = mkdtempSync(path.join(tmpdir(), 'atelier-bench-webhooks-'));
chmodSync(tmp, 0o755);
const server = await startPostgres({ dataDir: path.join(tmp, 'pg'), port: await freePort() });
const cleanups: (() => Promise<unknown>)[] = [];
try {
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: server.url(),
    DATABASE_POOL_MAX: '8',
    WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true',
  });
  const cfg = config.webhooks;
  console.log(
    `bench:webhooks — ${ENDPOINTS} endpoints (${SLOW} answer after ${SLOW_MS} ms), ${PER_ENDPOINT} deliveries each, ` +
      `concurrency ${cfg.concurrency} (≤ ${cfg.userConcurrency} per user), Node ${process.version}`,
  );
  await migrate(config);
  const admin = createPool(config, 'admin', { max: 2 });
  const system = createPool(config, 'system', { max: 16 });
  cleanups.push(
    () => admin.end(),
    () => system.end(),
  );

  // 100 users with one endpoint each; events emitted as the app does, in transactions.
  const box = createSecretBox(cfg.secretKeys);
  const users = Array.from({ length: ENDPOINTS }, (_, i) => `bench-user-${i}`);
  await admin.query(`INSERT INTO users (id, email) SELECT id, id || '@bench.test' FROM unnest($1::text[]) id`, [users]);
  const endpointIds: string[] = [];
  const secrets: string[] = [];
  for (let i = 0; i < ENDPOINTS; i++) {
    const id = newId('whk');
    const secret = newSigningSecret();
    endpointIds.push(id);
    secrets.push(secret);
    await admin.query(
      `INSERT INTO webhook_endpoints (id, user_id, url, events, secret_encrypted) VALUES ($1, $2, $3, $4, $5)`,
      [id, users[i], urlOf(i), ['generation.succeeded'], box.seal(id, secret)],
    );
  }
  const producer = new PgBoss({
    connectionString: config.database.systemUrl,
    schema: PGBOSS_SCHEMA,
    migrate: false,
    createSchema: false,
    schedule: false,
    supervise: false,
    registerInstance: false,
    openTelemetry: { enabled: false },
  });
  producer.on('error', () => {});
  await producer.start();
  cleanups.push(() => producer.stop({ graceful: false, close: true }));
  const emitter = createWebhookEmitter(pgBossWebhookJobs(producer, cfg));
  for (let n = 0; n < PER_ENDPOINT; n++)
    for (let i = 0; i < ENDPOINTS; i++)
      await withSystemTx(system, (tx) =>
        emitter.emit(tx, users[i]!, {
          type: 'generation.succeeded',
          data: { generationId: newId('gen'), imageIds: [newId('img')] },
        }),
      );
  const bodies = (
    await admin.query<{ endpoint_id: string; payload: string }>('SELECT endpoint_id, payload FROM webhook_deliveries')
  ).rows;

  // ── Atelier: the delivery worker drains the queue ──
  const fastIds = endpointIds.slice(SLOW);
  const started = performance.now();
  const worker = await startWebhookWorker({
    config: cfg,
    connectionString: config.database.systemUrl,
    systemPool: system,
    pollingIntervalSeconds: 0.5,
  });
  let fastDoneMs = 0;
  for (;;) {
    const r = await admin.query<{ all: number; fast: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS all,
              count(*) FILTER (WHERE status = 'succeeded' AND endpoint_id = ANY($1))::int AS fast,
              count(*) FILTER (WHERE status = 'failed')::int AS failed
         FROM webhook_deliveries`,
      [fastIds],
    );
    const { all, fast, failed } = r.rows[0]!;
    if (failed > 0) throw new Error(`${failed} deliveries failed`);
    if (!fastDoneMs && fast === fastIds.length * PER_ENDPOINT) fastDoneMs = performance.now() - started;
    if (all === TOTAL) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  const atelierMs = performance.now() - started;
  await worker.stop();

  // ── Reference: fetch POSTs of the same bodies, same concurrency, no database ──
  const jobs = bodies.map((b) => ({ i: endpointIds.indexOf(b.endpoint_id), body: b.payload }));
  // Same order as the queue hands them out (creation order), so the slow ones are spread alike.
  let next = 0;
  let fastLeft = jobs.filter((j) => j.i >= SLOW).length;
  let refFastMs = 0;
  const refStart = performance.now();
  await Promise.all(
    Array.from({ length: cfg.concurrency }, async () => {
      for (;;) {
        const j = jobs[next++];
        if (!j) return;
        const t = Math.floor(Date.now() / 1000);
        const res = await fetch(urlOf(j.i), {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'Atelier-Signature': signatureHeader(secrets[j.i]!, j.body, t),
          },
          body: j.body,
          signal: AbortSignal.timeout(cfg.timeoutMs),
        });
        await res.arrayBuffer();
        if (j.i >= SLOW && --fastLeft === 0) refFastMs = performance.now() - refStart;
      }
    }),
  );
  const refMs = performance.now() - refStart;

  const rate = (ms: number) => (TOTAL / ms) * 1000;
  console.log(
    `atelier delivery worker: ${TOTAL} deliveries in ${(atelierMs / 1000).toFixed(2)} s = ${rate(atelierMs).toFixed(0)}/s; ` +
      `the 90 fast endpoints' ${fastIds.length * PER_ENDPOINT} done after ${(fastDoneMs / 1000).toFixed(2)} s`,
  );
  console.log(
    `reference (fetch, same receivers, concurrency ${cfg.concurrency}, no database): ${(refMs / 1000).toFixed(2)} s = ${rate(refMs).toFixed(0)}/s; ` +
      `fast ones done after ${(refFastMs / 1000).toFixed(2)} s`,
  );
  console.log(`ratio deliveries/s atelier ÷ reference: ${(rate(atelierMs) / rate(refMs)).toFixed(2)}`);
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await server.stop();
  receiver.closeAllConnections();
  receiver.close();
  rmSync(tmp, { recursive: true, force: true });
}
