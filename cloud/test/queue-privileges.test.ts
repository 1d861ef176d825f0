/**
 * Least privilege on pg-boss's tables (migration 0090): the API's role enqueues and cancels jobs
 * and the queue-metrics sidecar counts them, but none can read a job's payload (which names the
 * user and the generation) or delete jobs; the workers' role still can.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBacklog, readLoad } from '../infra/queue-metrics/backlog.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { GENERATION_QUEUE } from '../src/queue/job-queue.ts';
import { PgBossJobQueue } from '../src/queue/pg-boss-job-queue.ts';
import { createTestDatabase } from './support/index.ts';

let app: Pool;
let system: Pool;
let producer: PgBossJobQueue;

beforeAll(async () => {
  const db = await createTestDatabase();
  app = createPool(db.config, 'app', { max: 2 });
  system = createPool(db.config, 'system', { max: 2 });
  producer = new PgBossJobQueue({
    connectionString: db.config.database.appUrl,
    queue: db.config.queue,
    mode: 'producer',
  });
  await producer.start();
});

afterAll(async () => {
  await producer?.stop(500);
  await app?.end();
  await system?.end();
});

/** The SQLSTATE a statement fails with as `pool`'s role, or 'ok'. */
async function outcome(pool: Pool, sql: string): Promise<string> {
  try {
    await pool.query(sql);
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe('app role on the queue tables', () => {
  it('enqueues inside its own transaction and cancels, as the API does', async () => {
    const tx = await app.connect();
    let id: string;
    try {
      await tx.query('BEGIN');
      id = await producer.enqueue(tx, { generationId: 'gen_priv_1', userId: 'user-priv' }, { priority: 0 });
      await tx.query('COMMIT');
    } finally {
      tx.release();
    }
    const states = await app.query<{ state: string }>('SELECT state FROM pgboss.job WHERE id = $1', [id]);
    expect(states.rows).toEqual([{ state: 'created' }]);
    await producer.cancel(app, id);
    const after = await system.query<{ state: string; data: { userId: string } }>(
      'SELECT state, data FROM pgboss.job WHERE id = $1',
      [id],
    );
    expect(after.rows[0]).toEqual({ state: 'cancelled', data: { generationId: 'gen_priv_1', userId: 'user-priv' } });
  });

  it('cannot read job payloads or outputs, through the parent table or a partition, and cannot delete', async () => {
    const denied = '42501'; // insufficient_privilege
    expect(await outcome(app, 'SELECT data FROM pgboss.job')).toBe(denied);
    expect(await outcome(app, 'SELECT output FROM pgboss.job')).toBe(denied);
    expect(await outcome(app, 'SELECT * FROM pgboss.job')).toBe(denied);
    expect(await outcome(app, 'SELECT * FROM pgboss.job_common')).toBe(denied);
    expect(await outcome(app, "SELECT id FROM pgboss.job WHERE data->>'userId' = 'user-priv'")).toBe(denied);
    expect(await outcome(app, 'DELETE FROM pgboss.job')).toBe(denied);
    expect(await outcome(app, 'UPDATE pgboss.job SET data = NULL')).toBe(denied);
    // Every partition, not just today's.
    const parts = await system.query<{ t: string }>(
      `SELECT inhrelid::regclass::text AS t FROM pg_inherits WHERE inhparent = 'pgboss.job'::regclass`,
    );
    expect(parts.rows.length).toBeGreaterThan(0);
    for (const { t } of parts.rows) expect(await outcome(app, `SELECT data FROM ${t}`), t).toBe(denied);
  });

  it('the sidecar’s reads still work as the app role; the workers’ role still reads payloads', async () => {
    const backlog = await readBacklog(app, GENERATION_QUEUE);
    expect(backlog.queued).toBeGreaterThanOrEqual(0);
    const load = await readLoad(app, GENERATION_QUEUE, 300);
    expect(load.arrivals).toBeGreaterThanOrEqual(1);
    expect(await outcome(system, 'SELECT data FROM pgboss.job')).toBe('ok');
  });
});
