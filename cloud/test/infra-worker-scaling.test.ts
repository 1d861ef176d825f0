/**
 * The GPU fleet's scaling policy (cloud/infra/lib/worker-scaling.ts): the load the sidecar reads
 * from a real pg-boss queue, the step scaling the CDK app deploys, and the invariants of the
 * simulator behind `npm run sim:autoscale`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_WORKER_SCALING,
  demandOf,
  desiredTasks,
  erlangC,
  erlangFleet,
  scalingSteps,
  wantedTasks,
  type WorkerScalingPolicy,
} from '../infra/lib/worker-scaling.ts';
import { readLoad } from '../infra/queue-metrics/backlog.ts';
import {
  DAY_SECONDS,
  DEFAULT_TRAFFIC,
  generateTraffic,
  simulateOracle,
  simulatePolicy,
  summarize,
  type Job,
} from '../infra/sim/autoscale.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { GENERATION_QUEUE } from '../src/queue/job-queue.ts';
import { PgBossJobQueue } from '../src/queue/pg-boss-job-queue.ts';
import { createTestDatabase } from './support/index.ts';

const policy: WorkerScalingPolicy = { ...DEFAULT_WORKER_SCALING };

describe('scaling policy', () => {
  it('Erlang C matches the closed form', () => {
    // M/M/2 at a = 1: C = a^c/c! · c/(c−a) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c−a)) = 1/3.
    expect(erlangC(2, 1)).toBeCloseTo(1 / 3, 12);
    expect(erlangC(1, 0.5)).toBeCloseTo(0.5, 12); // M/M/1: ρ
    expect(erlangFleet(0, 1, 20, 0.05, 4)).toBe(0);
    expect(erlangFleet(10, 1, 20, 0.05, 4)).toBe(4); // capped
  });

  it('wants zero tasks only when nothing arrived, runs or waits', () => {
    const idle = { arrivals: 0, meanServiceSeconds: null, queued: 0, running: 0 };
    expect(wantedTasks(idle, policy)).toBe(0);
    expect(wantedTasks({ ...idle, arrivals: 1 }, policy)).toBe(1);
    expect(wantedTasks({ ...idle, running: 1 }, policy)).toBe(1);
    expect(wantedTasks({ ...idle, queued: 3 * policy.backlogPerTask }, policy)).toBe(3);
    expect(wantedTasks({ ...idle, queued: 1000 }, policy)).toBe(policy.maxTasks);
  });

  it('the demand holds the window’s largest size, so scale-in waits for the whole window', () => {
    const sizes = [3, 0, 0, 0, 0, 0, 0, 0];
    expect(demandOf(sizes, { demandWindowPeriods: 8 })).toBe(3);
    expect(demandOf([...sizes, 0], { demandWindowPeriods: 8 })).toBe(0);
  });

  it('the CDK step intervals set exactly desiredTasks for every demand value', () => {
    for (const p of [policy, { ...policy, maxTasks: 7, minTasks: 0 }]) {
      const steps = scalingSteps(p);
      for (let demand = 0; demand <= p.maxTasks + 3; demand++) {
        const step =
          steps.find((s) => (s.lower ?? -Infinity) <= demand && demand < (s.upper ?? Infinity)) ??
          steps.find((s) => s.upper === 0 && demand <= 0);
        expect(step?.change, `demand ${demand}`).toBe(desiredTasks(demand, p));
      }
    }
  });
});

describe('simulator invariants', () => {
  const jobs = generateTraffic(DEFAULT_TRAFFIC);
  const policyRun = simulatePolicy(jobs, policy);
  const oracleRun = simulateOracle(jobs, { intervalSeconds: 300, targetWaitSeconds: 20, maxTasks: policy.maxTasks });

  it('is deterministic for a seed and differs for another', () => {
    const again = generateTraffic(DEFAULT_TRAFFIC);
    expect(again).toEqual(jobs);
    expect(summarize(again, simulatePolicy(again, policy))).toEqual(summarize(jobs, policyRun));
    expect(generateTraffic({ ...DEFAULT_TRAFFIC, seed: 15 }).length).not.toBe(jobs.length);
  });

  it('generates a day: arrivals in order within 24 h, both plans, a quiet night and a busy afternoon', () => {
    expect(jobs.length).toBeGreaterThan(10_000);
    expect(jobs.every((j, i) => j.arrival < DAY_SECONDS && (i === 0 || j.arrival >= jobs[i - 1]!.arrival))).toBe(true);
    const share = jobs.filter((j) => j.plan === 'pro').length / jobs.length;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.25);
    const inHour = (h: number) => jobs.filter((j) => j.arrival >= h * 3600 && j.arrival < (h + 1) * 3600).length;
    expect(inHour(15)).toBeGreaterThan(50 * Math.max(1, inHour(4)));
  });

  it.each([
    ['policy', policyRun],
    ['oracle', oracleRun],
  ] as const)('%s: every job starts exactly once, never before it arrives; paid GPU time covers the work', (_, run) => {
    const waits = Array.from(run.waits);
    expect(waits.filter((w) => !Number.isFinite(w))).toEqual([]);
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(0);
    const work = jobs.reduce((s: number, j: Job) => s + j.service, 0) / 3600;
    expect(run.gpuHours).toBeGreaterThan(work);
    expect(run.peakTasks).toBeLessThanOrEqual(policy.maxTasks);
  });

  it('the policy scales to zero on a quiet night and pays for GPU start-ups', () => {
    expect(policyRun.scaleToZeroEvents).toBeGreaterThan(0);
    // The first job of the day meets a cold fleet: it waits for a GPU host to start.
    expect(policyRun.waits[0]).toBeGreaterThanOrEqual(policy.periodSeconds);
    const s = summarize(jobs, policyRun);
    expect(s.p99).toBeGreaterThan(s.p95);
  });

  it('Pro jobs wait less than Free jobs (they are taken first)', () => {
    const s = summarize(jobs, policyRun);
    expect(s.p95Pro).toBeLessThan(s.p95Free);
  });

  it('meets the goal against the oracle: p95 wait ≤ 1.3×, GPU-hours ≤ 1.2×', () => {
    const p = summarize(jobs, policyRun);
    const o = summarize(jobs, oracleRun);
    expect(p.p95 / o.p95).toBeLessThanOrEqual(1.3);
    expect(p.gpuHours / o.gpuHours).toBeLessThanOrEqual(1.2);
  });
});

describe('queue load as the sidecar reads it (real pg-boss)', () => {
  let pool: Pool;
  let queue: PgBossJobQueue;
  // Taking and completing jobs is the workers' role (the app role cannot read payloads, migration 0090).
  let system: Pool;
  let worker: PgBossJobQueue;

  beforeAll(async () => {
    const db = await createTestDatabase();
    pool = createPool(db.config, 'app', { max: 2 });
    queue = new PgBossJobQueue({
      connectionString: db.config.database.appUrl,
      queue: db.config.queue,
      mode: 'producer',
    });
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

  it('counts arrivals of the window, the mean run time of completed jobs, and what waits and runs now', async () => {
    expect(await readLoad(pool, GENERATION_QUEUE, 300)).toEqual({
      arrivals: 0,
      meanServiceSeconds: null,
      queued: 0,
      running: 0,
    });
    const job = (n: number) => ({ generationId: `gen_${n}`, userId: 'user-1' });
    for (let n = 0; n < 4; n++) await queue.enqueue(pool, job(n), { priority: 0 });
    const [a, b] = await worker.boss.fetch(GENERATION_QUEUE, { batchSize: 2 });
    expect(b).toBeDefined();
    await worker.boss.complete(GENERATION_QUEUE, a!.id);
    // Give the completed job a known run time, and age one job out of the window.
    await system.query(
      `UPDATE pgboss.job SET started_on = completed_on - interval '3 seconds' WHERE name = $1 AND state = 'completed'`,
      [GENERATION_QUEUE],
    );
    await system.query(
      `UPDATE pgboss.job SET created_on = now() - interval '1 hour'
        WHERE id = (SELECT id FROM pgboss.job WHERE name = $1 AND state = 'created' LIMIT 1)`,
      [GENERATION_QUEUE],
    );
    const load = await readLoad(pool, GENERATION_QUEUE, 300);
    expect(load).toEqual({ arrivals: 3, meanServiceSeconds: 3, queued: 2, running: 1 });
    expect(wantedTasks(load, policy)).toBeGreaterThanOrEqual(1);
  });
});
