/**
 * `npm run bench:usage`: what the usage chart and the operator report cost on a loaded database,
 * against references measured in the same run on the same data:
 *   1. GET /v1/usage/daily's reads (dailyUsage, one heavy user) ÷ GET /v1/me's usage read
 *      (currentUsage): how much more the chart costs than the meter every screen already shows.
 *   2. the operator report for 30 days (operatorMetrics) ÷ one scan that counts the range's
 *      generations, distinct users and images: the least any report over those rows must read.
 * Runs on its own embedded Postgres (random port, temp data). Options: --users N (default 2000),
 * --generations N (default 200000), --runs N (timed repetitions, median reported; default 15).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import pg from 'pg';
import { parseConfig } from '../cloud/src/config.ts';
import { migrate } from '../cloud/src/db/migrate.ts';
import { createPool } from '../cloud/src/db/pool.ts';
import { withUserTx } from '../cloud/src/db/tx.ts';
import { currentUsage } from '../cloud/src/quota/usage.ts';
import { startPostgres } from '../cloud/src/stack/postgres.ts';
import { dailyUsage, operatorMetrics } from '../cloud/src/usage/repository.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const USERS = arg('users', 2000);
const GENERATIONS = arg('generations', 200_000);
const RUNS = arg('runs', 15);
const HEAVY = 5000; // generations of the one user whose chart is timed

const freePort = async () => {
  const s = Fastify();
  await s.listen({ port: 0, host: '127.0.0.1' });
  const port = (s.server.address() as { port: number }).port;
  await s.close();
  return port;
};

async function median(fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm: plans cached, pages in memory
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)]!;
}

const tmp = mkdtempSync(path.join(tmpdir(), 'atelier-bench-usage-'));
chmodSync(tmp, 0o755);
console.log(
  `bench:usage — ${USERS} users, ${GENERATIONS} generations over 60 days, median of ${RUNS} runs, Node ${process.version}`,
);
const server = await startPostgres({ dataDir: path.join(tmp, 'pg'), port: await freePort(), durable: false });
try {
  const admin0 = new pg.Client({ connectionString: server.url() });
  await admin0.connect();
  await admin0.query('CREATE DATABASE bench');
  await admin0.end();
  const config = parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: server.url('bench') });
  await migrate(config);
  const admin = createPool(config, 'admin', { max: 1 });
  const app = createPool(config, 'app', { max: 1 });
  const system = createPool(config, 'system', { max: 1 });
  try {
    const now = new Date();
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    // Seeded in SQL (fast): users, a plan history, generations in every status with waits, and
    // each generation's reservation (+ a refund for the failed) in the ledger, as the API writes them.
    await admin.query(
      `INSERT INTO users (id, email, created_at)
       SELECT 'bench-' || i, 'bench-' || i || '@bench.test', now() - interval '90 days' FROM generate_series(0, $1 - 1) i`,
      [USERS],
    );
    await admin.query(
      `INSERT INTO plan_changes (user_id, to_pro, changed_at)
       SELECT 'bench-' || i, true, now() - (i % 60) * interval '1 day' FROM generate_series(0, $1 - 1, 7) i`,
      [USERS],
    );
    await admin.query(
      `INSERT INTO generations (id, user_id, params, image_count, priority, progress_total, period_start,
                                status, created_at, started_at, finished_at, source)
       SELECT 'gen_bench' || lpad(g::text, 17, '0'),
              CASE WHEN g < $2 THEN 'bench-0' ELSE 'bench-' || (g % $1) END,
              '{}', 1 + g % 4, 0, 4, date_trunc('month', t, 'UTC'),
              (ARRAY['succeeded','succeeded','succeeded','failed','canceled'])[1 + g % 5]::generation_status,
              t, t + (g % 90) * interval '1 second', t + (g % 90 + 30) * interval '1 second',
              CASE WHEN g % 3 = 0 THEN 'api' ELSE 'desktop' END
         FROM generate_series(0, $3 - 1) g,
              LATERAL (SELECT now() - ((g * 7919) % (60 * 86400)) * interval '1 second' AS t) x`,
      [USERS, HEAVY, GENERATIONS],
    );
    await admin.query(
      `INSERT INTO usage_ledger (user_id, generation_id, kind, amount, period_start, created_at)
       SELECT user_id, id, 'reserve', image_count, period_start, created_at FROM generations
       UNION ALL
       SELECT user_id, id, 'refund', -image_count, period_start, finished_at FROM generations WHERE status = 'failed'`,
    );
    await admin.query(
      `INSERT INTO usage_periods (user_id, period_start, period_end, plan, used, "limit")
       SELECT user_id, period_start, period_start + interval '1 month', 'free', sum(amount), 100000
         FROM usage_ledger GROUP BY user_id, period_start`,
    );
    await admin.query('ANALYZE');

    const heavy = 'bench-0';
    const chart = await median(() => withUserTx(app, heavy, (tx) => dailyUsage(tx, heavy, {})));
    const meter = await median(() => withUserTx(app, heavy, (tx) => currentUsage(tx, heavy)));
    const to = now.toISOString().slice(0, 10);
    const from = new Date(now.getTime() - 29 * 86_400_000).toISOString().slice(0, 10);
    const report = await median(() => operatorMetrics(system, from, to));
    const scan = await median(() =>
      system.query(
        `SELECT count(*), count(DISTINCT user_id), sum(image_count) FROM generations
          WHERE created_at >= $1::date AND created_at < $2::date + 1`,
        [from, to],
      ),
    );
    const inRange = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM generations WHERE created_at >= $1::date AND created_at < $2::date + 1`,
      [from, to],
    );
    const heavyDays = await withUserTx(app, heavy, (tx) => dailyUsage(tx, heavy, {}));
    console.log(
      `period starts ${monthStart.toISOString().slice(0, 10)}; the heavy user's chart spans ${heavyDays.days.length} days`,
    );
    console.log(
      `1. usage chart (GET /v1/usage/daily reads, ${HEAVY} generations of one user): ${chart.toFixed(2)} ms; ` +
        `usage meter (GET /v1/me read): ${meter.toFixed(2)} ms; ratio ${(chart / meter).toFixed(1)}×`,
    );
    console.log(
      `2. operator report, 30 days (${inRange.rows[0]!.n} generations in range): ${report.toFixed(1)} ms; ` +
        `one counting scan of the range: ${scan.toFixed(1)} ms; ratio ${(report / scan).toFixed(1)}×`,
    );
  } finally {
    await Promise.all([admin.end(), app.end(), system.end()]);
  }
} finally {
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
