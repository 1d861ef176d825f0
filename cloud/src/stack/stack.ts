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
import { ensureUserPool, startCognitoLocal } from './cognito.ts';
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
    const cognito = await startCognitoLocal({ dataDir: path.join(ctx.dataDir, 'cognito'), port });
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
    return cognito;
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
    env: { ...opts.env },
    stack: {},
    dataDir: STACK_DIR,
    pgDataDir: opts.env.ATELIER_PG_DATA ?? path.join(tmpdir(), `atelier-${hash}`, 'pg'),
    log: opts.log ?? ((s, line) => console.log(`[${s}] ${line}`)),
  };
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
