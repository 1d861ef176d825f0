/**
 * The backlog the GPU fleet scales on, read from a real pg-boss queue on the run's Postgres, as
 * the publisher's role (atelier_app) reads it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS, readBacklog, toMetricData } from '../infra/queue-metrics/backlog.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { GENERATION_QUEUE } from '../src/queue/job-queue.ts';
import { PgBossJobQueue } from '../src/queue/pg-boss-job-queue.ts';
import { createTestDatabase } from './support/index.ts';

let pool: Pool;
let queue: PgBossJobQueue;
// What workers do (take jobs, and the tests' backdating) needs the workers' role: since migration
// 0090 the app role cannot read job payloads.
let system: Pool;
let worker: PgBossJobQueue;

beforeAll(async () => {
  const db = await createTestDatabase();
  pool = createPool(db.config, 'app', { max: 2 });
  queue = new PgBossJobQueue({ connectionString: db.config.database.appUrl, queue: db.config.queue, mode: 'producer' });
  await queue.start();
  system = createPool(db.config, 'system', { max: 2 });
  worker = new PgBossJobQueue({
    connectionString: db.config.database.systemUrl,
    queue: db.config.queue,
    mode: 'producer',
  });
  await worker.start();
});

afterAll(async () => {
  await queue?.stop(500);
  await worker?.stop(500);
  await pool?.end();
  await system?.end();
});

describe('queue backlog metric', () => {
  it('is zero on an empty queue', async () => {
    expect(await readBacklog(pool, GENERATION_QUEUE)).toEqual({ queued: 0, active: 0, oldestQueuedSeconds: 0 });
  });

  it('counts waiting and running jobs; the age ignores jobs deferred to later', async () => {
    const job = (n: number) => ({ generationId: `gen_${n}`, userId: 'user-1' });
    for (let n = 0; n < 3; n++) await queue.enqueue(pool, job(n), { priority: 0 });
    // A retry waiting for its delay: backlog, but not yet "waiting too long".
    await queue.boss.send(GENERATION_QUEUE, job(9), { startAfter: 3600 });
    const [taken] = await worker.boss.fetch(GENERATION_QUEUE);
    expect(taken).toBeDefined();
    // Backdate one job that still waits, so the age is observable without waiting.
    await system.query(
      `UPDATE pgboss.job SET created_on = now() - interval '5 minutes'
        WHERE id = (SELECT id FROM pgboss.job WHERE name = $1 AND state = 'created' AND start_after <= now() LIMIT 1)`,
      [GENERATION_QUEUE],
    );

    const b = await readBacklog(pool, GENERATION_QUEUE);
    expect(b.queued).toBe(3);
    expect(b.active).toBe(1);
    expect(b.oldestQueuedSeconds).toBeGreaterThanOrEqual(299);
    expect(b.oldestQueuedSeconds).toBeLessThan(3600);

    const data = toMetricData(b, 'prod', new Date(0));
    expect(data.map((d) => [d.MetricName, d.Value])).toEqual([
      [METRICS.queued, 3],
      [METRICS.active, 1],
      [METRICS.backlog, 4],
      [METRICS.oldestAge, b.oldestQueuedSeconds],
    ]);
    expect(data.every((d) => d.Dimensions?.[0]?.Value === 'prod')).toBe(true);
  });
});
