/**
 * Helpers for cloud tests (shared by every cloud area). Requires the cloud project's globalSetup.
 *
 *   const db = await createTestDatabase();          // a fresh clone of the migrated template
 *   const t = await buildTestApp({ db });            // Fastify app wired to it (not listening)
 *   const alice = await createTestUser();            // a confirmed cognito-local user + tokens
 *   await t.app.inject({ method: 'GET', url: '/v1/me', headers: auth(alice) });
 *   afterAll(() => t.close());
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWTPayload } from 'jose';
import pg from 'pg';
import { inject } from 'vitest';
import { buildApp, type AppDeps } from '../../src/app.ts';
import { parseConfig, type Config } from '../../src/config.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { EventHub } from '../../src/events/hub.ts';
import { PgBossJobQueue } from '../../src/queue/pg-boss-job-queue.ts';
import { signUpConfirmed, type Tokens } from '../../src/stack/cognito.ts';
import type { FastifyInstance } from 'fastify';

export const stackInfo = () => inject('atelier');
/** The stack's cognito-local, as the desktop's cloud client takes it. */
export const stackCognito = () => {
  const s = stackInfo();
  return { endpoint: s.cognitoEndpoint, userPoolId: s.userPoolId, clientId: s.clientId };
};

export interface TestDatabase {
  name: string;
  /** Superuser URL of this database (migrator / admin). */
  url: string;
  config: Config;
}

/** Config for a test database: silent logs, fast queue supervision, cognito-local from the run. */
export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  const s = stackInfo();
  return parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: databaseUrl,
    COGNITO_REGION: 'local',
    COGNITO_ENDPOINT: s.cognitoEndpoint,
    COGNITO_USER_POOL_ID: s.userPoolId,
    COGNITO_CLIENT_ID: s.clientId,
    COGNITO_ISSUER: s.issuer,
    QUEUE_SUPERVISE_SECONDS: '1',
    DATABASE_POOL_MAX: '5',
    // Tests fire many requests from one address; rate-limit tests set their own limits.
    RATE_LIMIT_IP_PER_MINUTE: '100000',
    RATE_LIMIT_USER_PER_MINUTE: '100000',
    RATE_LIMIT_KEY_PER_MINUTE: '100000',
    RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '100000',
    USER_IN_FLIGHT_MAX: '100000',
    // Tests queue hundreds of requests on a 5-connection pool on a shared machine; the timeout
    // tests (harden-db) set their own short values.
    DATABASE_ACQUIRE_TIMEOUT_MS: '30000',
    DATABASE_LOCK_TIMEOUT_MS: '30000',
    // Periodic work (pg-boss schedules) runs only in the tests about it.
    PERIODIC_WORK: 'off',
    ...env,
  });
}

/** CREATE DATABASE … TEMPLATE the migrated template: one per test file (or per test). */
export async function createTestDatabase(env: Record<string, string> = {}): Promise<TestDatabase> {
  const s = stackInfo();
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${s.adminUrlBase}postgres` });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${s.templateDb}`);
  } finally {
    await admin.end();
  }
  const url = `${s.adminUrlBase}${name}`;
  return { name, url, config: testConfig(url, env) };
}

export interface TestUser extends Tokens {
  sub: string;
  email: string;
  password: string;
}

export const TEST_PASSWORD = 'Atelier-Test-1';

/** Sign-up + AdminConfirmSignUp + USER_PASSWORD_AUTH against the run's cognito-local. */
export async function createTestUser(email = `user-${randomUUID()}@example.test`): Promise<TestUser> {
  const s = stackInfo();
  const t = await signUpConfirmed(
    s.cognitoEndpoint,
    { userPoolId: s.userPoolId, clientId: s.clientId },
    email,
    TEST_PASSWORD,
  );
  return { ...t, email, password: TEST_PASSWORD };
}

export const auth = (u: { accessToken: string }) => ({ authorization: `Bearer ${u.accessToken}` });

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  pool: Pool;
  systemPool: Pool;
  adminPool: Pool;
  queue: PgBossJobQueue;
  events: EventHub;
  close(): Promise<void>;
}

/** A ready app on a test database; `overrides` replace any dependency (clock, verifier, …). */
export async function buildTestApp(opts: { db: TestDatabase; overrides?: Partial<AppDeps> }): Promise<TestApp> {
  const config = opts.overrides?.config ?? opts.db.config;
  const pool = createPool(config, 'app');
  const systemPool = createPool(config, 'system', { max: 3 });
  const adminPool = createPool(config, 'admin', { max: 2 });
  const queue = new PgBossJobQueue({ connectionString: config.database.appUrl, queue: config.queue, mode: 'producer' });
  await queue.start();
  const events = new EventHub(config.database.appUrl);
  await events.start();
  const app = await buildApp({ config, pool, systemPool, queue, events, logger: false, ...opts.overrides });
  return {
    app,
    config,
    pool,
    systemPool,
    adminPool,
    queue,
    events,
    async close() {
      await app.close();
      await queue.stop(500);
      await events.stop();
      await Promise.all([pool.end(), systemPool.end(), adminPool.end()]);
    },
  };
}

// ── Forged tokens ────────────────────────────────────────────────────────────────────────────

const require = createRequire(import.meta.url);
type SigningKey = Parameters<SignJWT['sign']>[0];

/** cognito-local's own signing key (it ships in the package): valid signatures with any claims. */
export async function cognitoLocalKey() {
  const file = path.join(
    path.dirname(require.resolve('cognito-local/package.json')),
    'lib/keys/cognitoLocal.private.json',
  );
  const { jwk } = JSON.parse(readFileSync(file, 'utf8')) as { jwk: Record<string, unknown> };
  return { key: (await importJWK({ ...jwk, alg: 'RS256' }, 'RS256')) as SigningKey, kid: 'CognitoLocal' };
}

/** A key the issuer never published (bad signature). */
export async function strangerKey() {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { key: privateKey, kid: 'CognitoLocal', jwk: await exportJWK(publicKey) };
}

/** An access token with claims of your choosing (defaults: valid for this run's pool and client). */
export async function forgeToken(
  signer: { key: SigningKey; kid: string },
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const s = stackInfo();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    sub: randomUUID(),
    token_use: 'access',
    client_id: s.clientId,
    iss: s.issuer,
    iat: now,
    exp: now + 3600,
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: signer.kid, ...header })
    .sign(signer.key);
}

/** `alg: none` — unsigned. */
export function unsignedToken(claims: JWTPayload): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
}
