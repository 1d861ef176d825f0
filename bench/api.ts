/**
 * `npm run bench:api`: the cloud API against references measured in the same run.
 *   1. authenticated GET /v1/me throughput ÷ a Fastify hello-world's (same machine, same load generator),
 *      and ÷ a minimal Fastify handler that runs the same SQL statements over the same pool (the
 *      statements recorded from one GET /v1/me; no auth, no schemas, no hooks): the fair ceiling for the route
 *   2. POST /v1/generations throughput ÷ pgbench running the same SQL transaction (recorded from the API)
 *   3. queue dispatch latency p50/p99: commit of the enqueueing transaction → consumer handler start
 * Everything runs on its own embedded Postgres and cognito-local (random ports, temp data).
 * Options: --seconds N (per throughput phase, default 5), --connections N (default 16),
 *   --redis (count the API's rate limits in the machine's Redis, REDIS_URL or redis://127.0.0.1:6379,
 *   as replicas do in production; default: in process).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify from 'fastify';
import type pg from 'pg';
import { buildApp } from '../cloud/src/app.ts';
import { createPool, type Pool } from '../cloud/src/db/pool.ts';
import { withSystemTx } from '../cloud/src/db/tx.ts';
import { EventHub } from '../cloud/src/events/hub.ts';
import { PgBossJobQueue } from '../cloud/src/queue/pg-boss-job-queue.ts';
import { accessTokens, arg, load, rps, startCloudStack } from './support.ts';

const SECONDS = arg('seconds', 5);
const CONNECTIONS = arg('connections', 16);
const USERS = 3000;
const REDIS = process.argv.includes('--redis') ? (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : null;

console.log(
  `bench:api — ${SECONDS}s per phase, ${CONNECTIONS} connections, Node ${process.version}, limits counted ${REDIS ? `in Redis (${REDIS})` : 'in process'}`,
);
const stack = await startCloudStack('api', {
  RATE_LIMIT_IP_PER_MINUTE: '100000000',
  RATE_LIMIT_USER_PER_MINUTE: '100000000',
  DATABASE_POOL_MAX: '16',
  ...(REDIS ? { REDIS_URL: REDIS, RATE_LIMIT_REDIS_PREFIX: `atelier-bench:${process.pid}:` } : {}),
});
const { config, tmp, pgPort } = stack;
const cleanups: (() => Promise<unknown>)[] = [];
try {
  // Users: provisioned rows (Pro, so 8 concurrent jobs each) and access tokens signed with
  // cognito-local's key — verified by the real RS256/JWKS path, like any cognito-local token.
  const adminPool = createPool(config, 'admin', { max: 2 });
  cleanups.push(() => adminPool.end());
  const ids = Array.from({ length: USERS }, (_, i) => `bench-${i}`);
  await adminPool.query(`INSERT INTO users (id, email) SELECT id, id || '@bench.test' FROM unnest($1::text[]) id`, [
    ids,
  ]);
  await adminPool.query(
    `INSERT INTO subscriptions (user_id, plan, status) SELECT id, 'pro', 'active' FROM unnest($1::text[]) id`,
    [ids],
  );
  const tokens = await accessTokens(stack, ids);

  // ── 1. GET /v1/me vs hello-world ──
  console.error('phase: hello');
  const hello = Fastify({ logger: false });
  hello.get('/hello', async () => ({ hello: 'world' }));
  const helloUrl = await hello.listen({ host: '127.0.0.1', port: 0 });
  const helloR = await load({
    url: `${helloUrl}/hello`,
    method: 'GET',
    connections: CONNECTIONS,
    durationMs: SECONDS * 1000,
    requests: [{ headers: {} }],
  });
  await hello.close();

  const pool = createPool(config, 'app');
  const queue = new PgBossJobQueue({ connectionString: config.database.appUrl, queue: config.queue, mode: 'producer' });
  await queue.start();
  const events = new EventHub(config.database.appUrl);
  await events.start();
  const app = await buildApp({ config, pool, queue, events, logger: false });
  cleanups.push(async () => {
    await app.close();
    await queue.stop(500);
    await events.stop();
    await pool.end();
  });
  const apiUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  console.error('phase: /v1/me');
  const meReqs = tokens.slice(0, 64).map((t) => ({ headers: { authorization: `Bearer ${t}` } }));
  await load({ url: `${apiUrl}/v1/me`, method: 'GET', connections: CONNECTIONS, durationMs: 1000, requests: meReqs }); // warm-up
  const meR = await load({
    url: `${apiUrl}/v1/me`,
    method: 'GET',
    connections: CONNECTIONS,
    durationMs: SECONDS * 1000,
    requests: meReqs,
  });
  if (Object.keys(meR.statuses).some((s) => s !== '200'))
    throw new Error(`GET /v1/me statuses ${JSON.stringify(meR.statuses)}`);

  console.error('phase: same-sql recording');
  // ── 1b. The same SQL over the same pool, behind a minimal Fastify handler ──
  // Record what one (already provisioned) user's GET /v1/me runs: pool queries and, per checked-out
  // client, its statements in order.
  // A statement as pg takes it: a named (prepared) statement stays named in the replay.
  type Statement = { name?: string; text: string; values: unknown[] };
  type Step = ({ kind: 'pool' } & Statement) | { kind: 'client'; statements: Statement[] };
  const statement = (q: string | { name?: string; text: string; values?: unknown[] }, values?: unknown[]): Statement =>
    typeof q === 'string'
      ? { text: q, values: values ?? [] }
      : { ...(q.name ? { name: q.name } : {}), text: q.text, values: values ?? q.values ?? [] };
  const meSteps: Step[] = [];
  // More than one connection: a request may query the pool while it holds a client.
  const mePool = createPool(config, 'app', { max: 4 });
  const meConnect = mePool.connect.bind(mePool);
  type AnyQuery = (
    q: string | { name?: string; text: string; values?: unknown[] },
    values?: unknown[],
  ) => Promise<unknown>;
  const meQuery = mePool.query.bind(mePool) as unknown as AnyQuery;
  (mePool as unknown as { query: AnyQuery }).query = (q, values) => {
    meSteps.push({ kind: 'pool', ...statement(q, values) });
    return meQuery(q, values);
  };
  // pg's own pool.query checks a client out with a callback: leave that path alone (recorded above).
  (mePool as unknown as { connect: (cb?: unknown) => unknown }).connect = (cb?: unknown) => {
    if (cb) return (meConnect as unknown as (cb: unknown) => void)(cb);
    return meConnect().then((c) => {
      const step: Step = { kind: 'client', statements: [] };
      meSteps.push(step);
      return new Proxy(c, {
        get(target, prop, recv) {
          if (prop === 'query')
            return (q: string | { name?: string; text: string; values?: unknown[] }, values?: unknown[]) => {
              step.statements.push(statement(q, values));
              return (target.query as unknown as AnyQuery).call(target, q, values);
            };
          return Reflect.get(target, prop, recv) as unknown;
        },
      });
    });
  };
  const meApp = await buildApp({ config, pool: mePool as Pool, queue, events, logger: false });
  const meUser = ids[0]!;
  const meProbe = async () =>
    meApp.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${tokens[0]}` } });
  const first = await meProbe();
  if (first.statusCode !== 200) throw new Error(`GET /v1/me probe failed: ${first.statusCode} ${first.body}`);
  meSteps.length = 0; // the first request provisioned; record a steady-state one
  const second = await meProbe();
  if (second.statusCode !== 200) throw new Error(`GET /v1/me probe failed: ${second.statusCode} ${second.body}`);
  await meApp.close();
  await mePool.end();
  if (!meSteps.length) throw new Error('GET /v1/me ran no SQL');
  const swap = (v: unknown, user: string): unknown =>
    v === meUser ? user : Array.isArray(v) ? v.map((x) => swap(x, user)) : v;
  const forUser = (values: unknown[], user: string) => values.map((v) => swap(v, user));
  const sameSql = Fastify({ logger: false });
  sameSql.get('/me', async (req) => {
    const user = String(req.headers['x-user']);
    let last: pg.QueryResult | undefined;
    for (const step of meSteps) {
      const run = (st: Statement) => ({ ...st, values: forUser(st.values, user) });
      if (step.kind === 'pool') last = await pool.query(run(step));
      else {
        const c = await pool.connect();
        try {
          for (const st of step.statements) last = await c.query(run(st));
        } finally {
          c.release();
        }
      }
    }
    return last?.rows[0] ?? {};
  });
  console.error(`phase: same-sql load (${meSteps.length} steps)`);
  const sameSqlUrl = await sameSql.listen({ host: '127.0.0.1', port: 0 });
  const sameReqs = ids.slice(0, 64).map((u) => ({ headers: { 'x-user': u } }));
  await load({
    url: `${sameSqlUrl}/me`,
    method: 'GET',
    connections: CONNECTIONS,
    durationMs: 1000,
    requests: sameReqs,
  }); // warm-up
  const sameR = await load({
    url: `${sameSqlUrl}/me`,
    method: 'GET',
    connections: CONNECTIONS,
    durationMs: SECONDS * 1000,
    requests: sameReqs,
  });
  await sameSql.close();
  if (Object.keys(sameR.statuses).some((s) => s !== '200'))
    throw new Error(`same-SQL handler statuses ${JSON.stringify(sameR.statuses)}`);
  const meStatements = meSteps.reduce((n, st) => n + (st.kind === 'pool' ? 1 : st.statements.length), 0);

  // ── 2. POST /v1/generations vs pgbench on the same transaction ──
  // Record the exact statements one submission runs (through a pool that logs its queries).
  const recorded: { text: string; values: unknown[] }[] = [];
  const recPool = createPool(config, 'app', { max: 1 });
  const origConnect = recPool.connect.bind(recPool);
  (recPool as unknown as { connect: () => Promise<pg.PoolClient> }).connect = async () => {
    const c = await origConnect();
    return new Proxy(c, {
      get(target, prop, recv) {
        if (prop === 'query')
          return (text: string, values?: unknown[]) => {
            recorded.push({ text, values: values ?? [] });
            return target.query(text, values);
          };
        return Reflect.get(target, prop, recv) as unknown;
      },
    });
  };
  const recApp = await buildApp({ config, pool: recPool as Pool, queue, events, logger: false });
  const probeUser = ids[USERS - 1]!;
  const probe = await recApp.inject({
    method: 'POST',
    url: '/v1/generations',
    headers: { authorization: `Bearer ${tokens[USERS - 1]}` },
    payload: { prompt: 'a lighthouse at dusk', seed: 1 },
  });
  if (probe.statusCode !== 202) throw new Error(`probe failed: ${probe.body}`);
  const genId = probe.json().id as string;
  const jobId = (await adminPool.query<{ job_id: string }>('SELECT job_id FROM generations WHERE id = $1', [genId]))
    .rows[0]!.job_id;
  await recApp.close();
  await recPool.end();
  const lit = (v: unknown): string => {
    if (v === null || v === undefined) return 'NULL';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (v instanceof Date) return `'${v.toISOString()}'`;
    if (Array.isArray(v)) return `ARRAY[${v.map(lit).join(', ')}]`;
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return `'${s.replaceAll("'", "''")}'`;
  };
  // Unique ids per transaction: pgbench substitutes :vars textually in simple mode.
  const script = recorded
    .map(({ text, values }) => {
      let sql = text;
      for (let i = values.length; i >= 1; i--) sql = sql.replaceAll(`$${i}`, lit(values[i - 1]));
      sql = sql
        .replaceAll(genId, `gen_:g`)
        .replaceAll(jobId, `${jobId.slice(0, 24)}:j`)
        .replaceAll(probeUser, 'bench-:u');
      return `${sql.replace(/\s+/g, ' ').trim()};`;
    })
    .join('\n');
  const scriptFile = path.join(tmp, 'submit.sql');
  writeFileSync(
    scriptFile,
    `\\set u random(0, ${USERS - 1})\n\\set g random(1000000000000000000, 9000000000000000000)\n\\set j random(100000000000, 999999999999)\n${script}\n`,
  );
  const pgbenchBin = ['/usr/lib/postgresql/15/bin/pgbench', 'pgbench'].find(
    (b) => spawnSync(b, ['--version']).status === 0,
  );
  if (!pgbenchBin) throw new Error('pgbench not found (apt-get install postgresql-client)');
  const pgb = spawnSync(
    pgbenchBin,
    [
      '-n',
      '-M',
      'simple',
      '-c',
      String(CONNECTIONS),
      '-j',
      '2',
      '-T',
      String(SECONDS),
      '-f',
      scriptFile,
      '-h',
      '127.0.0.1',
      '-p',
      String(pgPort),
      '-U',
      'atelier_app',
      'bench',
    ],
    { encoding: 'utf8', env: { ...process.env, PGPASSWORD: config.database.rolePassword } },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(pgb.stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(pgb.stdout)?.[1] ?? 0);
  if (!tps) throw new Error(`pgbench failed:\n${pgb.stdout}\n${pgb.stderr}`);

  // First sight of each user (token verification + provisioning) is not what this measures.
  await load({
    url: `${apiUrl}/v1/me`,
    method: 'GET',
    connections: CONNECTIONS,
    durationMs: 0,
    requests: tokens.map((t) => ({ headers: { authorization: `Bearer ${t}` } })),
    count: USERS,
  });
  // Each user takes at most 8 (Pro's concurrent jobs): spread requests over all users.
  const postReqs = tokens.slice(0, USERS - 1).map((t) => ({
    headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a lighthouse at dusk', seed: 1 }),
  }));
  const postR = await load({
    url: `${apiUrl}/v1/generations`,
    method: 'POST',
    connections: CONNECTIONS,
    durationMs: SECONDS * 1000,
    requests: postReqs,
  });
  const accepted = postR.statuses['202'] ?? 0;
  const postRps = (accepted / postR.elapsedMs) * 1000;

  // ── 3. Queue dispatch latency: commit → handler start ──
  const systemPool = createPool(config, 'system', { max: 2 });
  cleanups.push(() => systemPool.end());
  await adminPool.query(`DELETE FROM pgboss.job WHERE name = 'generations'`);
  const consumer = new PgBossJobQueue({
    connectionString: config.database.systemUrl,
    queue: config.queue,
    mode: 'consumer',
  });
  await consumer.start();
  cleanups.unshift(() => consumer.stop(500));
  const committedAt = new Map<string, number>();
  const latencies: number[] = [];
  let wake: (() => void) | null = null;
  await consumer.work(
    async (job) => {
      const t0 = committedAt.get(job.generationId);
      if (t0 !== undefined) latencies.push(performance.now() - t0);
      wake?.();
    },
    { concurrency: 1, onDeadLetter: async () => {} },
  );
  const SAMPLES = 200;
  for (let i = 0; i < SAMPLES; i++) {
    const id = `gen_latency_${i}`;
    const done = new Promise<void>((r) => (wake = r));
    await withSystemTx(systemPool, (tx) =>
      consumer.enqueue(tx, { generationId: id, userId: 'bench-0' }, { priority: 0 }),
    );
    committedAt.set(id, performance.now());
    await done;
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;

  const lines = [
    `GET /v1/me (authenticated): ${rps(meR).toFixed(0)} req/s; Fastify hello-world: ${rps(helloR).toFixed(0)} req/s → ratio ${(rps(meR) / rps(helloR)).toFixed(2)} (goal ≥ 0.6)`,
    `GET /v1/me vs a minimal handler running its ${meStatements} SQL statements over the same pool: ${rps(sameR).toFixed(0)} req/s → ratio ${(rps(meR) / rps(sameR)).toFixed(2)} (goal ≥ 0.8)`,
    `POST /v1/generations: ${postRps.toFixed(0)} accepted/s (${JSON.stringify(postR.statuses)}); pgbench same transaction: ${tps.toFixed(0)} tps (${failed} failed) → ratio ${(postRps / tps).toFixed(2)} (goal ≥ 0.6)`,
    `queue dispatch latency (commit → consumer start, ${SAMPLES} jobs): p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms (goal p99 ≤ 15 ms)`,
  ];
  for (const l of lines) console.log(l);
} finally {
  for (const c of cleanups) await c().catch(() => undefined);
  await stack.stop();
}
