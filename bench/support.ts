/**
 * Pieces the cloud benches share, so each bench file holds only what it measures: option parsing,
 * a free loopback port, the worker-thread load generator, and (for the API benches) a throwaway
 * Postgres + cognito-local stack with a migrated `bench` database and cognito-local access tokens.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Fastify from 'fastify';
import { importJWK, SignJWT } from 'jose';
import pg from 'pg';
import { type Config, parseConfig } from '../cloud/src/config.ts';
import { migrate } from '../cloud/src/db/migrate.ts';
import { ensureUserPool, startCognitoLocal } from '../cloud/src/stack/cognito.ts';
import { startPostgres } from '../cloud/src/stack/postgres.ts';
import type { LoadResult, LoadSpec } from './http-load.ts';

/** `--name N` from the command line, or `def`. */
export const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};

export const freePort = async () => {
  const s = Fastify();
  await s.listen({ port: 0, host: '127.0.0.1' });
  const port = (s.server.address() as { port: number }).port;
  await s.close();
  return port;
};

/** Runs the load generator in a worker thread, so its clients don't share the server's event loop. */
export function load(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(path.join(import.meta.dirname, 'http-load.ts'), { workerData: spec });
    w.once('message', (m: LoadResult) => resolve(m));
    w.once('error', reject);
  });
}

export const rps = (r: LoadResult) => (r.completed / r.elapsedMs) * 1000;

export interface CloudStack {
  tmp: string;
  /** Postgres's port, for tools that connect outside the API (pgbench). */
  pgPort: number;
  config: Config;
  /** cognito-local's app client id (the `client_id` claim of its access tokens). */
  clientId: string;
  /** Stops Postgres and cognito-local and removes the temp folder. */
  stop(): Promise<void>;
}

/**
 * Embedded Postgres and cognito-local on random ports in a temp folder `atelier-bench-<name>-*`,
 * a migrated `bench` database, and the API config pointing at both (`env` adds or overrides
 * settings). Durable Postgres: the API benches measure commits as production pays for them.
 */
export async function startCloudStack(name: string, env: Record<string, string>): Promise<CloudStack> {
  const tmp = mkdtempSync(path.join(tmpdir(), `atelier-bench-${name}-`));
  chmodSync(tmp, 0o755);
  const [pgPort, cogPort] = [await freePort(), await freePort()];
  const [server, cognito] = await Promise.all([
    startPostgres({ dataDir: path.join(tmp, 'pg'), port: pgPort, durable: true }),
    startCognitoLocal({ dataDir: path.join(tmp, 'cognito'), port: cogPort }),
  ]);
  const stop = async () => {
    await Promise.all([server.stop(), cognito.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const admin0 = new pg.Client({ connectionString: server.url() });
    await admin0.connect();
    await admin0.query('CREATE DATABASE bench');
    await admin0.end();
    const userPool = await ensureUserPool(cognito.endpoint);
    const config = parseConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATABASE_URL: server.url('bench'),
      COGNITO_REGION: 'local',
      COGNITO_ENDPOINT: cognito.endpoint,
      COGNITO_USER_POOL_ID: userPool.userPoolId,
      COGNITO_CLIENT_ID: userPool.clientId,
      COGNITO_ISSUER: `${cognito.issuerDomain}/${userPool.userPoolId}`,
      ...env,
    });
    await migrate(config);
    return { tmp, pgPort, config, clientId: userPool.clientId, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/**
 * One access token per user id, signed with cognito-local's own key: the API verifies them through
 * cognito-local's JWKS like any token it issues, without a sign-in per user.
 */
export async function accessTokens(stack: CloudStack, ids: string[]): Promise<string[]> {
  const require = createRequire(import.meta.url);
  const keyFile = path.join(
    path.dirname(require.resolve('cognito-local/package.json')),
    'lib/keys/cognitoLocal.private.json',
  );
  const key = await importJWK(
    { ...(JSON.parse(readFileSync(keyFile, 'utf8')) as { jwk: object }).jwk, alg: 'RS256' },
    'RS256',
  );
  const now = Math.floor(Date.now() / 1000);
  return Promise.all(
    ids.map((sub) =>
      new SignJWT({ sub, token_use: 'access', client_id: stack.clientId, username: sub })
        .setProtectedHeader({ alg: 'RS256', kid: 'CognitoLocal' })
        .setIssuer(stack.config.cognito.issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(key),
    ),
  );
}
