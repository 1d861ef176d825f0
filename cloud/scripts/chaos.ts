/**
 * `npm run chaos`: the full zero-loss rolling-restart run (issue 14). Starts its own embedded
 * Postgres and cognito-local (random ports, data under /tmp), migrates a database, signs up the
 * desktops' users, then runs cloud/test/chaos/harness.ts with several rounds of restarts. Prints
 * the figures recorded in docs/BENCHMARKS.md and exits 1 if anything was lost.
 *
 *   npm run chaos                          # 6 desktops, 2 rounds
 *   npm run chaos -- --users 4 --rounds 1
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { parseConfig } from '../src/config.ts';
import { migrate } from '../src/db/migrate.ts';
import { ensureUserPool, signUpConfirmed, startCognitoLocal } from '../src/stack/cognito.ts';
import { startPostgres } from '../src/stack/postgres.ts';
import { formatFigures, runChaos, type ChaosStep } from '../test/chaos/harness.ts';
import { freePort } from '../test/support/free-port.ts';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`Usage: npm run chaos [-- --users N] [-- --rounds N] [-- --keep]
Two API processes and two workers behind a round-robin proxy, N desktops (the desktop's cloud
client) under steady load; each round restarts every process with SIGTERM and terminates the
app's database connections; the first round also SIGKILLs one API and one worker.
  --users N    desktops (default 6; each stays under the Free plan's quota)
  --rounds N   restart rounds (default 2)
  --keep       keep the scratch folder (process logs) and print its path`);
  process.exit(0);
}
const users = Number(values.users);
const rounds = Number(values.rounds);
if (!Number.isInteger(users) || users < 1 || !Number.isInteger(rounds) || rounds < 1) {
  console.error('--users and --rounds take whole numbers ≥ 1');
  process.exit(2);
}

const workDir = mkdtempSync(path.join(tmpdir(), 'atelier-chaos-'));
chmodSync(workDir, 0o755); // as root, Postgres runs as `postgres` and must reach its data folder
const started = Date.now();
const say = (line: string) => console.log(`[chaos ${((Date.now() - started) / 1000).toFixed(1)} s] ${line}`);

const [pgPort, cognitoPort] = [await freePort(), await freePort()];
say('starting embedded Postgres and cognito-local…');
const [postgres, cognito] = await Promise.all([
  startPostgres({ dataDir: path.join(workDir, 'pg'), port: pgPort, durable: false, maxConnections: 200 }),
  startCognitoLocal({ dataDir: path.join(workDir, 'cognito'), port: cognitoPort }),
]);
let exitCode = 1;
try {
  const admin = new pg.Client({ connectionString: postgres.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE atelier_chaos');
  await admin.end();
  const databaseUrl = postgres.url('atelier_chaos');
  await migrate(parseConfig({ DATABASE_URL: databaseUrl, NODE_ENV: 'test', LOG_LEVEL: 'silent' }));
  const pool = await ensureUserPool(cognito.endpoint);
  const password = 'Chaos-Desktop-1';
  const accounts: { email: string; password: string }[] = [];
  for (let i = 0; i < users; i++) {
    const email = `desktop-${i}-${Date.now()}@chaos.test`;
    await signUpConfirmed(cognito.endpoint, pool, email, password);
    accounts.push({ email, password });
  }

  const steps: ChaosStep[] = [];
  for (let r = 0; r < rounds; r++) {
    steps.push(
      { kind: 'restart', role: 'api', index: 0, signal: 'SIGTERM' },
      { kind: 'restart', role: 'worker', index: 0, signal: 'SIGTERM' },
      { kind: 'restart', role: 'api', index: 1, signal: 'SIGTERM' },
      { kind: 'restart', role: 'worker', index: 1, signal: 'SIGTERM' },
      { kind: 'kill-db-connections' },
    );
    if (r === 0)
      steps.push(
        { kind: 'restart', role: 'api', index: 1, signal: 'SIGKILL' },
        { kind: 'restart', role: 'worker', index: 0, signal: 'SIGKILL' },
      );
    steps.push({ kind: 'steady', ms: 5_000 });
  }

  const result = await runChaos(
    {
      databaseUrl,
      cognito: { endpoint: cognito.endpoint, ...pool, issuer: `${cognito.issuerDomain}/${pool.userPoolId}` },
      users: accounts,
      workDir,
    },
    {
      steadyMs: 20_000,
      steps,
      windowTailMs: 1_000,
      settleMs: 90_000,
      heartbeatSeconds: 10,
      // The processes' logs go to files under the scratch folder (kept with --keep).
      env: { LOG_LEVEL: 'info' },
      // 90 jobs of one image each: under the Free plan's 100 a month, so no refusal is expected.
      load: { inFlight: 2, maxJobs: 90, readEveryMs: 250, submitGapMs: 100, failEvery: 5 },
      log: say,
    },
  );
  console.log(`\n${formatFigures(result)}`);
  exitCode = result.problems.length === 0 && result.figures.unabsorbedErrors === 0 ? 0 : 1;
} catch (err) {
  console.error(err);
} finally {
  await Promise.all([postgres.stop(), cognito.stop()]);
  if (values.keep) console.log(`scratch folder kept: ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
}
process.exit(exitCode);
