/**
 * Zero-loss rolling restarts (issue 14): two API processes and two workers — real child processes
 * of cloud/src/server.ts and cloud/src/worker/main.ts on the demo model — behind a round-robin
 * proxy, under steady load from a fleet of desktops (test/chaos/desktop-fleet.ts, the desktop's
 * own cloud client), while each process is restarted in turn (SIGTERM, and SIGKILL) and the
 * database connections of the app's roles are terminated. Then the books are checked against
 * what every client saw. Used by cloud/test/chaos/rolling-restart.test.ts (light) and
 * `npm run chaos` (cloud/scripts/chaos.ts, longer).
 *
 * The harness needs a migrated database, cognito-local and confirmed users (the test takes them
 * from the cloud project's global setup; the script starts its own); it starts s3rver itself.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { GenerateRequestInput } from '@atelier/common';
import { DEMO_MODEL_DIR } from '../../src/catalogue/catalogue.ts';
import { startLocalS3, LOCAL_S3_CREDENTIALS, type LocalS3 } from '../../src/storage/local-s3.ts';
import { imageObjectKey } from '../../src/storage/keys.ts';
import { S3ObjectStore } from '../../src/storage/s3-object-store.ts';
import { freePort } from '../support/free-port.ts';
import { RoundRobinProxy } from './proxy.ts';
// Types only: the fleet runs as its own process (cloud/ never imports desktop code at runtime).
import type { ClientReport, FleetReport, FleetStart } from '../../../test/chaos/desktop-fleet.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const NODE = path.join(REPO, 'node_modules/.bin/node');
const API_MAIN = path.join(REPO, 'cloud/src/server.ts');
const WORKER_MAIN = path.join(REPO, 'cloud/src/worker/main.ts');
const FLEET_MAIN = path.join(REPO, 'test/chaos/desktop-fleet.ts');

export interface ChaosInfra {
  /** Superuser URL of a migrated database used by this run only. */
  databaseUrl: string;
  cognito: { endpoint: string; userPoolId: string; clientId: string; issuer: string };
  /** Confirmed cognito-local users, one desktop each. */
  users: { email: string; password: string }[];
  /** Scratch folder (s3rver data, process logs). */
  workDir: string;
}

export interface RestartStep {
  kind: 'restart';
  role: 'api' | 'worker';
  index: number;
  signal: 'SIGTERM' | 'SIGKILL';
}

export type ChaosStep =
  | RestartStep
  /** Restarts at the same time (an API and a worker: different services deploy independently). */
  | { kind: 'together'; steps: RestartStep[] }
  | { kind: 'kill-db-connections' }
  | { kind: 'steady'; ms: number };

export interface ChaosPlan {
  /** Unit: ms of load before the first step (the steady reference). */
  steadyMs: number;
  steps: ChaosStep[];
  /** Unit: ms a restart window lasts after its replacement is ready (late effects count as restart). */
  windowTailMs: number;
  /** Unit: ms the fleet waits at the end for every accepted job to end in its view. */
  settleMs: number;
  load: Pick<FleetStart, 'inFlight' | 'maxJobs' | 'readEveryMs' | 'submitGapMs' | 'failEvery'>;
  /** Seconds pg-boss waits for a silent worker's heartbeat (≥ 10) before retrying its job. */
  heartbeatSeconds: number;
  /** Extra environment for every API and worker process. */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export const CHAOS_REQUEST: GenerateRequestInput = {
  prompt: 'a red circle on a blue background',
  model: 'atelier-demo-shapes',
  width: 64,
  height: 64,
  steps: 4,
  count: 1,
};

/**
 * A catalogue model whose folder holds no model: every job on it fails on the worker, so the
 * run also checks that failures under chaos are refunded exactly once.
 */
export const BROKEN_MODEL = 'chaos-broken-model';

export interface LatencyFigures {
  calls: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ChaosResult {
  /** Every broken promise found; empty when the run lost nothing. */
  problems: string[];
  clients: ClientReport[];
  figures: {
    requests: number;
    httpAttempts: number;
    retriesAbsorbed: number;
    retriesByCode: Record<string, number>;
    reconnects: number;
    unabsorbedErrors: number;
    steady: LatencyFigures;
    restarts: LatencyFigures;
    jobs: { accepted: number; succeeded: number; failed: number; refunded: number; retriedByQueue: number };
    terminalVia: Record<string, number>;
    proxy: { connections: number; failovers: number; dropped: number };
    steps: { step: string; ms: number }[];
    dbConnectionsKilled: number;
  };
}

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  tail: () => string;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function latency(ms: number[]): LatencyFigures {
  const s = [...ms].sort((a, b) => a - b);
  return { calls: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? 0 };
}

export async function runChaos(infra: ChaosInfra, plan: ChaosPlan): Promise<ChaosResult> {
  const log = plan.log ?? (() => undefined);
  const logDir = path.join(infra.workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const cleanups: (() => Promise<unknown>)[] = [];
  const logs: WriteStream[] = [];
  let s3: LocalS3 | null = null;
  const admin = new pg.Pool({ connectionString: infra.databaseUrl, max: 2 });
  const databaseName = new URL(infra.databaseUrl).pathname.slice(1);

  try {
    s3 = await startLocalS3({ directory: path.join(infra.workDir, 's3'), bucket: 'atelier-chaos' });
    const brokenDir = path.join(infra.workDir, 'broken-model');
    mkdirSync(brokenDir, { recursive: true });
    const baseEnv: Record<string, string> = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: infra.databaseUrl,
      COGNITO_REGION: 'local',
      COGNITO_ENDPOINT: infra.cognito.endpoint,
      COGNITO_USER_POOL_ID: infra.cognito.userPoolId,
      COGNITO_CLIENT_ID: infra.cognito.clientId,
      COGNITO_ISSUER: infra.cognito.issuer,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_REGION: s3.region,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
      QUEUE_SUPERVISE_SECONDS: '1',
      QUEUE_HEARTBEAT_SECONDS: String(plan.heartbeatSeconds),
      SHUTDOWN_GRACE_SECONDS: '5',
      DATABASE_POOL_MAX: '5',
      WORKER_CONCURRENCY: '2',
      WORKER_ENGINE_THREADS: '1',
      JANITOR_INTERVAL_SECONDS: '0',
      // One address (the proxy) carries every desktop: per-IP limits would measure the test.
      RATE_LIMIT_IP_PER_MINUTE: '1000000',
      RATE_LIMIT_USER_PER_MINUTE: '1000000',
      RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '1000000',
      USER_IN_FLIGHT_MAX: '1000',
      ATELIER_CLOUD_MODELS: JSON.stringify([
        { id: 'atelier-demo-shapes', name: 'Atelier demo: shapes', default: true, dir: DEMO_MODEL_DIR },
        { id: BROKEN_MODEL, name: 'A model whose weights are missing', dir: brokenDir },
      ]),
      ...plan.env,
    };

    let generation = 0;
    // Every process ever started, so that cleanup also reaches one whose start-up failed.
    const spawned: Proc[] = [];
    function start(name: string, script: string, env: Record<string, string>): Proc {
      const file = path.join(logDir, `${name}-${++generation}.log`);
      const out = createWriteStream(file);
      logs.push(out);
      const child = spawn(NODE, [script], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let recent = '';
      const keep = (d: Buffer) => {
        out.write(d);
        recent = (recent + d.toString()).slice(-4000);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const proc = { name, child, exited, tail: () => `${name} (log ${file}):\n${recent}` };
      spawned.push(proc);
      return proc;
    }

    async function until(what: string, proc: Proc, check: () => Promise<boolean>, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      let gone = false;
      void proc.exited.then(() => (gone = true));
      while (!(await check().catch(() => false))) {
        if (gone) throw new Error(`${what}: the process exited\n${proc.tail()}`);
        if (Date.now() > deadline) throw new Error(`${what}: not ready in ${timeoutMs} ms\n${proc.tail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    // ── the cluster ──────────────────────────────────────────────────────────────────────────
    const apiPorts = [await freePort(), await freePort()];
    const apis: Proc[] = [];
    const workers: Proc[] = [];
    const proxy = new RoundRobinProxy();
    const apiUrl = await proxy.listen();
    cleanups.push(() => proxy.close());

    async function startApi(i: number): Promise<Proc> {
      const p = start(`api${i}`, API_MAIN, { ...baseEnv, ATELIER_API_PORT: String(apiPorts[i]) });
      await until(`api${i}`, p, async () => (await fetch(`http://127.0.0.1:${apiPorts[i]}/readyz`)).ok);
      return p;
    }
    async function startWorker(i: number): Promise<Proc> {
      const p = start(`worker${i}`, WORKER_MAIN, baseEnv);
      let out = '';
      p.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await until(`worker${i}`, p, async () => out.includes('WORKER READY'));
      return p;
    }
    const stopAll = async (signal: NodeJS.Signals) => {
      const all = spawned.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
      for (const p of all) p.child.kill(signal);
      await Promise.all(all.map((p) => p.exited));
    };
    cleanups.push(() => stopAll('SIGKILL'));

    log('starting 2 API processes and 2 workers…');
    await Promise.all([
      ...[0, 1].map(async (i) => (apis[i] = await startApi(i))),
      ...[0, 1].map(async (i) => (workers[i] = await startWorker(i))),
    ]);
    for (const i of [0, 1]) proxy.add(`api${i}`, apiPorts[i]!);

    // ── the desktops ─────────────────────────────────────────────────────────────────────────
    const fleet = fork(FLEET_MAIN, [], {
      cwd: REPO,
      execPath: NODE,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let fleetOut = '';
    fleet.stdout!.on('data', (d: Buffer) => (fleetOut = (fleetOut + d.toString()).slice(-4000)));
    fleet.stderr!.on('data', (d: Buffer) => (fleetOut = (fleetOut + d.toString()).slice(-4000)));
    cleanups.push(async () => {
      if (fleet.exitCode === null && fleet.signalCode === null) fleet.kill('SIGKILL');
    });
    const fleetMessage = <T>(type: string) =>
      new Promise<T>((resolve, reject) => {
        const onMsg = (m: { type: string }) => {
          if (m.type !== type) return;
          fleet.off('message', onMsg);
          resolve(m as T);
        };
        fleet.on('message', onMsg);
        fleet.once('exit', (code) => reject(new Error(`desktop fleet exited (${code}):\n${fleetOut}`)));
      });
    const ready = fleetMessage<{ type: 'ready' }>('ready');
    const startMsg: FleetStart = {
      type: 'start',
      apiUrl,
      cognito: {
        endpoint: infra.cognito.endpoint,
        userPoolId: infra.cognito.userPoolId,
        clientId: infra.cognito.clientId,
      },
      users: infra.users,
      request: CHAOS_REQUEST,
      failModel: BROKEN_MODEL,
      ...plan.load,
    };
    fleet.send(startMsg);
    await ready;
    log(`${infra.users.length} desktops signed in through ${apiUrl}; steady load for ${plan.steadyMs} ms`);
    const steadyFrom = Date.now();
    await new Promise((r) => setTimeout(r, plan.steadyMs));

    // ── the chaos ────────────────────────────────────────────────────────────────────────────
    const windows: [number, number][] = [];
    const stepTimes: { step: string; ms: number }[] = [];
    let dbConnectionsKilled = 0;
    /** Processes that died without being told to (a crash is a lost replica, not a restart). */
    const crashed: string[] = [];
    async function restart(step: RestartStep): Promise<string> {
      const t0 = Date.now();
      const { role, index, signal } = step;
      const name = `${role}${index}`;
      const procs = role === 'api' ? apis : workers;
      // Rolling deploy: deregister from the load balancer first (SIGKILL is a crash: no warning).
      if (role === 'api' && signal === 'SIGTERM') proxy.setAccepting(name, false);
      const old = procs[index]!;
      if (old.child.exitCode !== null || old.child.signalCode !== null)
        crashed.push(`${name} had exited on its own before its ${signal}:\n${old.tail()}`);
      old.child.kill(signal);
      const exit = await old.exited;
      if (signal === 'SIGTERM' && exit.code !== 0)
        throw new Error(`${name} did not shut down cleanly after SIGTERM: ${JSON.stringify(exit)}\n${old.tail()}`);
      const stopped = Date.now();
      procs[index] = role === 'api' ? await startApi(index) : await startWorker(index);
      if (role === 'api') proxy.setAccepting(name, true);
      return `${signal} ${name} (down in ${stopped - t0} ms, replacement ready in ${Date.now() - stopped} ms)`;
    }

    for (const step of plan.steps) {
      const t0 = Date.now();
      let label: string;
      if (step.kind === 'steady') {
        label = `steady ${step.ms} ms`;
        await new Promise((r) => setTimeout(r, step.ms));
        stepTimes.push({ step: label, ms: Date.now() - t0 });
        log(label);
        continue;
      }
      if (step.kind === 'kill-db-connections') {
        label = 'pg_terminate_backend(app + system connections)';
        const r = await admin.query<{ n: string }>(
          `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
            WHERE datname = $1 AND usename IN ('atelier_app', 'atelier_system') AND pid <> pg_backend_pid()`,
          [databaseName],
        );
        dbConnectionsKilled += Number(r.rows[0]!.n);
        label += `: ${r.rows[0]!.n} connections`;
      } else if (step.kind === 'together') {
        label = (await Promise.all(step.steps.map(restart))).join(' ∥ ');
      } else label = await restart(step);
      const t1 = Date.now();
      windows.push([t0, t1 + plan.windowTailMs]);
      stepTimes.push({ step: label, ms: t1 - t0 });
      log(`${label}: ${t1 - t0} ms`);
    }

    // ── the books ────────────────────────────────────────────────────────────────────────────
    log(`stopping the load; waiting up to ${plan.settleMs} ms for every job to end`);
    const reportP = fleetMessage<FleetReport>('report');
    fleet.send({ type: 'stop', settleMs: plan.settleMs });
    const report = await reportP;
    // The fleet stops as soon as its own view is settled; the queue may still be retrying jobs
    // whose end no client learned. Wait for the database too (bounded) before judging.
    const userIds = report.clients.map((c) => c.userId).filter((x): x is string => x !== null);
    const settleDeadline = Date.now() + plan.settleMs;
    for (;;) {
      const open = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM generations WHERE user_id = ANY($1) AND status IN ('queued', 'running')`,
        [userIds],
      );
      if (Number(open.rows[0]!.n) === 0 || Date.now() > settleDeadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }

    const store = new S3ObjectStore({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      forcePathStyle: true,
      credentials: { ...LOCAL_S3_CREDENTIALS },
      maxAttempts: 2,
    });
    for (const p of [...apis, ...workers])
      if (p.child.exitCode !== null || p.child.signalCode !== null)
        crashed.push(`${p.name} exited on its own during the run:\n${p.tail()}`);
    let problems: string[];
    let jobs: ChaosResult['figures']['jobs'];
    try {
      ({ problems, jobs } = await audit(admin, store, report.clients));
    } finally {
      store.close();
    }
    problems.unshift(...crashed);

    // ── figures ──────────────────────────────────────────────────────────────────────────────
    const inWindow = (t: number) => windows.some(([a, b]) => t >= a && t <= b);
    const steadyMs: number[] = [];
    const restartMs: number[] = [];
    let requests = 0;
    for (const c of report.clients)
      for (const [t, ms] of c.calls) {
        requests++;
        // Steady: the reference phase before the first step and the quiet spells between steps.
        if (inWindow(t)) restartMs.push(ms);
        else if (t >= steadyFrom) steadyMs.push(ms);
      }
    const retriesByCode: Record<string, number> = {};
    for (const c of report.clients) for (const r of c.retries) retriesByCode[r.code] = (retriesByCode[r.code] ?? 0) + 1;
    const retriesAbsorbed = report.clients.reduce((n, c) => n + c.retries.length, 0);
    const terminalVia: Record<string, number> = {};
    for (const c of report.clients)
      for (const a of c.accepted) terminalVia[a.via ?? 'never'] = (terminalVia[a.via ?? 'never'] ?? 0) + 1;

    await stopAll('SIGTERM');
    return {
      problems,
      clients: report.clients,
      figures: {
        requests,
        httpAttempts: requests + retriesAbsorbed,
        retriesAbsorbed,
        retriesByCode,
        reconnects: report.clients.reduce((n, c) => n + Math.max(0, c.readies - 1), 0),
        unabsorbedErrors: report.clients.reduce((n, c) => n + c.errors.length, 0),
        steady: latency(steadyMs),
        restarts: latency(restartMs),
        jobs,
        terminalVia,
        proxy: { ...proxy.stats },
        steps: stepTimes,
        dbConnectionsKilled,
      },
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await s3?.close();
    await admin.end();
    for (const l of logs) l.end();
  }
}

/**
 * Checks the promises against the database and the bucket:
 *  - every generation a client was accepted is in the database, and nothing else is;
 *  - each ended: succeeded with its images recorded once and their bytes in the bucket, or failed
 *    with exactly one refund; each was reserved exactly once;
 *  - every user's usage equals the sum of their ledger;
 *  - each client learned the end the database records (from its event, or by re-reading after a
 *    reconnect), and reconnected after its replica went away;
 *  - no error reached a caller past the retry policy.
 */
async function audit(
  admin: pg.Pool,
  store: S3ObjectStore,
  clients: ClientReport[],
): Promise<{ problems: string[]; jobs: ChaosResult['figures']['jobs'] }> {
  const problems: string[] = [];
  const jobs = { accepted: 0, succeeded: 0, failed: 0, refunded: 0, retriedByQueue: 0 };
  for (const c of clients) {
    if (!c.userId) {
      problems.push(`${c.email}: never got a ready frame`);
      continue;
    }
    for (const e of c.errors) problems.push(`${c.email}: ${e.op} failed past the retry policy: ${e.code} ${e.message}`);
    if (c.readies < 2) problems.push(`${c.email}: events socket never reconnected (readies: ${c.readies})`);

    const rows = (
      await admin.query<{
        id: string;
        status: string;
        image_count: number;
        image_ids: string[];
        attempts: number;
        reserved: number;
        reserves: number;
        refunded: number;
        refunds: number;
        images: number;
      }>(
        `SELECT g.id, g.status, g.image_count, g.image_ids, g.attempts,
                coalesce(sum(l.amount) FILTER (WHERE l.kind = 'reserve'), 0)::int AS reserved,
                count(l.id) FILTER (WHERE l.kind = 'reserve')::int AS reserves,
                coalesce(-sum(l.amount) FILTER (WHERE l.kind = 'refund'), 0)::int AS refunded,
                count(l.id) FILTER (WHERE l.kind = 'refund')::int AS refunds,
                (SELECT count(*) FROM images i WHERE i.generation_id = g.id)::int AS images
           FROM generations g LEFT JOIN usage_ledger l ON l.generation_id = g.id
          WHERE g.user_id = $1 GROUP BY g.id`,
        [c.userId],
      )
    ).rows;
    const byId = new Map(rows.map((r) => [r.id, r]));
    const accepted = new Map(c.accepted.map((a) => [a.id, a]));
    for (const r of rows)
      if (!accepted.has(r.id)) problems.push(`${c.email}: ${r.id} exists but its client never got it`);
    for (const a of c.accepted) {
      jobs.accepted++;
      const r = byId.get(a.id);
      if (!r) {
        problems.push(`${c.email}: accepted ${a.id} is not in the database`);
        continue;
      }
      if (r.attempts > 1) jobs.retriedByQueue++;
      if (r.reserves !== 1 || r.reserved !== r.image_count)
        problems.push(`${a.id}: reserved ${r.reserves} times (${r.reserved} images for ${r.image_count})`);
      if (r.status === 'succeeded') {
        jobs.succeeded++;
        if (r.refunds !== 0) problems.push(`${a.id}: succeeded but refunded ${r.refunds} times`);
        if (r.image_ids.length !== r.image_count || r.images !== r.image_count)
          problems.push(`${a.id}: ${r.image_count} images ordered, ${r.image_ids.length} listed, ${r.images} recorded`);
        for (const imageId of r.image_ids) {
          const head = await store.head(imageObjectKey(c.userId, imageId as never));
          if (!head || head.size === 0) problems.push(`${a.id}: image ${imageId} has no bytes in the bucket`);
        }
      } else if (r.status === 'failed') {
        jobs.failed++;
        if (r.refunds !== 1 || r.refunded !== r.image_count)
          problems.push(`${a.id}: failed with ${r.refunds} refunds (${r.refunded} of ${r.image_count} images)`);
        else jobs.refunded++;
      } else problems.push(`${a.id}: still ${r.status} after the run settled`);
      if (a.status !== r.status)
        problems.push(`${c.email}: ${a.id} is ${r.status} in the database, ${a.status ?? 'unknown'} in its client`);
    }
    const usage = (
      await admin.query<{ period_start: Date; used: number; ledger: number }>(
        `SELECT p.period_start, p.used,
                (SELECT coalesce(sum(amount), 0) FROM usage_ledger l
                  WHERE l.user_id = p.user_id AND l.period_start = p.period_start)::int AS ledger
           FROM usage_periods p WHERE p.user_id = $1`,
        [c.userId],
      )
    ).rows;
    for (const u of usage)
      if (u.used !== u.ledger)
        problems.push(`${c.email}: usage ${u.used} but ledger ${u.ledger} for ${u.period_start.toISOString()}`);
  }
  return { problems, jobs };
}

/** The figures as a few lines for the console and docs/BENCHMARKS.md. */
export function formatFigures(r: ChaosResult): string {
  const f = r.figures;
  const l = (x: LatencyFigures) => `p50 ${x.p50} ms, p99 ${x.p99} ms, max ${x.max} ms over ${x.calls} calls`;
  return [
    `requests (client calls): ${f.requests}; HTTP attempts: ${f.httpAttempts}`,
    `errors absorbed by the retry policy: ${f.retriesAbsorbed} ${JSON.stringify(f.retriesByCode)}; socket reconnects: ${f.reconnects}`,
    `errors that reached a caller: ${f.unabsorbedErrors}`,
    `latency steady:   ${l(f.steady)}`,
    `latency restarts: ${l(f.restarts)}`,
    `jobs: ${f.jobs.accepted} accepted, ${f.jobs.succeeded} succeeded, ${f.jobs.failed} failed (${f.jobs.refunded} refunded once), ${f.jobs.retriedByQueue} ran more than once`,
    `terminal state learned via: ${JSON.stringify(f.terminalVia)}`,
    `proxy: ${f.proxy.connections} connections, ${f.proxy.failovers} failovers, ${f.proxy.dropped} dropped; db connections killed: ${f.dbConnectionsKilled}`,
    `steps: ${f.steps.map((s) => `${s.step} ${s.ms} ms`).join('; ')}`,
    r.problems.length ? `PROBLEMS (${r.problems.length}):\n  ${r.problems.join('\n  ')}` : 'problems: none',
  ].join('\n');
}
