import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { AppError } from '@atelier/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { withSystemTx } from '../src/db/tx.ts';
import { markFailed } from '../src/generations/repository.ts';
import { runGenerations, type Generate } from '../src/queue/generation-runner.ts';
import { PgBossJobQueue } from '../src/queue/pg-boss-job-queue.ts';
import { refundGeneration } from '../src/quota/usage.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';

let t: TestApp;
let user: TestUser;
let consumer: PgBossJobQueue | null = null;
const children: ChildProcess[] = [];

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  user = await createTestUser();
  await t.app.inject({ url: '/v1/me', headers: auth(user) });
  // Pro: more concurrent jobs, so tests can queue several.
  await t.adminPool.query(`INSERT INTO subscriptions (user_id, plan, status) VALUES ($1, 'pro', 'active')`, [user.sub]);
});
afterEach(async () => {
  await consumer?.stop(1000);
  consumer = null;
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await t.close();
});

const submit = async (body: Record<string, unknown> = { prompt: 'q' }) => {
  const res = await t.app.inject({ method: 'POST', url: '/v1/generations', headers: auth(user), payload: body });
  expect(res.statusCode).toBe(202);
  return res.json() as { id: string };
};
const generation = async (id: string) =>
  (await t.adminPool.query('SELECT status, attempts, error_code, image_ids FROM generations WHERE id = $1', [id]))
    .rows[0];
const ledger = async (id: string) =>
  (await t.adminPool.query('SELECT kind, amount FROM usage_ledger WHERE generation_id = $1 ORDER BY id', [id])).rows;

async function startConsumer(generate: Generate) {
  consumer = new PgBossJobQueue({
    connectionString: t.config.database.systemUrl,
    queue: t.config.queue,
    mode: 'consumer',
  });
  await consumer.start();
  await runGenerations({ queue: consumer, pool: t.systemPool, generate, concurrency: 1 });
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 45_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('generation queue', () => {
  it('runs a job: running → progress → succeeded, charged once', async () => {
    const g = await submit();
    await startConsumer(async (_gen, ctx) => {
      await ctx.progress(1, 1);
      return { imageIds: ['img_01JABCDEFGHJKMNPQRSTVWXYZ0'] };
    });
    const done = await until('success', async () =>
      (await generation(g.id)).status === 'succeeded' ? generation(g.id) : null,
    );
    expect(done).toMatchObject({ attempts: 1, image_ids: ['img_01JABCDEFGHJKMNPQRSTVWXYZ0'] });
    expect(await ledger(g.id)).toEqual([{ kind: 'reserve', amount: 1 }]);
  });

  it('a terminal failure marks the generation failed and refunds exactly once', async () => {
    const g = await submit({ prompt: 'fail', count: 2 });
    await startConsumer(async () => {
      throw new AppError('MODEL_NOT_AVAILABLE', 'gone');
    });
    await until('failure', async () => (await generation(g.id)).status === 'failed');
    expect(await generation(g.id)).toMatchObject({ status: 'failed', error_code: 'MODEL_NOT_AVAILABLE' });
    // Racing second failure paths (dead letter, janitor) do not refund again.
    await withSystemTx(t.systemPool, (tx) => markFailed(tx, g.id, 'ENGINE_FAILED'));
    expect(await withSystemTx(t.systemPool, (tx) => refundGeneration(tx, g.id, 'again'))).toBeNull();
    expect(await ledger(g.id)).toEqual([
      { kind: 'reserve', amount: 2 },
      { kind: 'refund', amount: -2 },
    ]);
  });

  it('retryable errors retry up to the limit, then fail and refund once', async () => {
    const g = await submit({ prompt: 'flaky' });
    const attempts: number[] = [];
    await startConsumer(async (_gen, ctx) => {
      attempts.push(ctx.attempt);
      throw new Error('GPU fell over');
    });
    await until('failure after retries', async () => (await generation(g.id)).status === 'failed').catch(async (e) => {
      console.log(
        attempts,
        await generation(g.id),
        (
          await t.adminPool.query(
            `SELECT state, retry_count, retry_limit, start_after, now() FROM pgboss.job WHERE data->>'generationId' = $1`,
            [g.id],
          )
        ).rows,
      );
      throw e;
    });
    expect(attempts).toEqual([1, 2, 3]); // retryLimit 2 → three attempts
    expect(await generation(g.id)).toMatchObject({ status: 'failed', error_code: 'ENGINE_FAILED', attempts: 3 });
    expect((await ledger(g.id)).map((l) => l.kind)).toEqual(['reserve', 'refund']);
  });

  it('a dead-lettered job (retries exhausted by dead workers) fails its generation and refunds once', async () => {
    const g = await submit({ prompt: 'orphan', count: 2 });
    await startConsumer(async () => {
      throw new Error('not reached: the job below goes straight to the dead-letter queue');
    });
    // What pg-boss does when the last attempt's worker stops heart-beating: copy the payload to
    // the dead-letter queue. Take the original job off the main queue first.
    const job = (await t.adminPool.query(`SELECT job_id FROM generations WHERE id = $1`, [g.id])).rows[0].job_id;
    await consumer!.boss.cancel('generations', job);
    await consumer!.boss.send('generations_dead', { generationId: g.id, userId: user.sub });
    await until('dead letter handled', async () => (await generation(g.id)).status === 'failed');
    expect(await generation(g.id)).toMatchObject({ status: 'failed', error_code: 'ENGINE_FAILED' });
    expect(await ledger(g.id)).toEqual([
      { kind: 'reserve', amount: 2 },
      { kind: 'refund', amount: -2 },
    ]);
  });

  it('takes Pro jobs before Free jobs', async () => {
    const free = await createTestUser();
    await t.app.inject({ url: '/v1/me', headers: auth(free) });
    const f = (
      await t.app.inject({ method: 'POST', url: '/v1/generations', headers: auth(free), payload: { prompt: 'free' } })
    ).json();
    const p = await submit({ prompt: 'pro' });
    const order: string[] = [];
    await startConsumer(async (gen) => {
      order.push(gen.id);
      return { imageIds: [] };
    });
    await until('both done', async () => order.length === 2);
    expect(order).toEqual([p.id, f.id]);
  });

  it('a consumer killed with kill -9 mid-job: the job is taken again and finishes once', async () => {
    const g = await submit({ prompt: 'survive' });
    const script = path.join(import.meta.dirname, 'support/consumer-child.ts');
    const spawnChild = (mode: string) => {
      const child = spawn(process.execPath, [script, JSON.stringify(t.config), mode], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (d) => (out += String(d)));
      return { child, out: () => out };
    };
    const a = spawnChild('hang');
    await until('first attempt to start', async () => a.out().includes(`STARTED ${g.id} 1`));
    expect((await generation(g.id)).status).toBe('running');
    a.child.kill('SIGKILL');
    const b = spawnChild('complete');
    await until('second attempt to finish', async () => b.out().includes(`DONE ${g.id}`), 55_000);
    await until('success recorded', async () => (await generation(g.id)).status === 'succeeded');
    expect(b.out()).toContain(`STARTED ${g.id} 2`);
    expect(b.out().split(`DONE ${g.id}`)).toHaveLength(2);
    expect(await generation(g.id)).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(await ledger(g.id)).toEqual([{ kind: 'reserve', amount: 1 }]);
    b.child.kill('SIGTERM');
  }, 90_000);
});
