// The desktop services against the real cloud: embedded Postgres, cognito-local and the Fastify
// API from @atelier/cloud, started here on random ports (this folder may import cloud/ for test
// set-up; the services themselves reach it only over HTTP/WS). The account flow goes through the
// IPC handlers exactly as the renderer drives it.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { SignJWT, importJWK } from 'jose';
import { createRequire } from 'node:module';
import type { AccountState, AppError, LocalJob } from '@atelier/common';
import { buildApp } from '@atelier/cloud/app';
import { parseConfig } from '@atelier/cloud/config';
import { createPool } from '@atelier/cloud/db/pool';
import { migrate } from '@atelier/cloud/db/migrate';
import { EventHub } from '@atelier/cloud/events/hub';
import { PgBossJobQueue } from '@atelier/cloud/queue/pg-boss-job-queue';
import { ensureUserPool, startCognitoLocal } from '@atelier/cloud/stack/cognito';
import { startPostgres } from '@atelier/cloud/stack/postgres';
import { createDesktopServices, type DesktopServices } from '../services/desktop-services.ts';
import { FileSecretStore } from '../services/secret-store.ts';
import { InMemoryEngine } from '../services/testing/in-memory-engine.ts';
import { InMemoryModels } from '../services/testing/in-memory-models.ts';

const require = createRequire(import.meta.url);
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

let tmp: string;
let cognitoDir: string;
let userPoolId: string;
let issuer: string;
let stopAll: () => Promise<void>;
let apiUrl: string;
let cognitoEndpoint: string;
let clientId: string;
const rewrites: { token: string | null } = { token: null };
let services: DesktopServices;
let profile: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'atelier-desktop-cloud-'));
  chmodSync(tmp, 0o755); // as root, Postgres runs as `postgres` and must reach its data dir
  cognitoDir = path.join(tmp, 'cognito');
  const [pgPort, cognitoPort] = [await freePort(), await freePort()];
  const [postgres, cognito] = await Promise.all([
    startPostgres({ dataDir: path.join(tmp, 'pg'), port: pgPort, durable: false }),
    startCognitoLocal({ dataDir: cognitoDir, port: cognitoPort }),
  ]);
  const admin = new pg.Client({ connectionString: postgres.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE atelier');
  await admin.end();
  const poolInfo = await ensureUserPool(cognito.endpoint);
  userPoolId = poolInfo.userPoolId;
  clientId = poolInfo.clientId;
  cognitoEndpoint = cognito.endpoint;
  issuer = `${cognito.issuerDomain}/${userPoolId}`;
  const databaseUrl = postgres.url('atelier');
  await migrate(parseConfig({ DATABASE_URL: databaseUrl, NODE_ENV: 'test' }));
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: databaseUrl,
    COGNITO_REGION: 'local',
    COGNITO_ENDPOINT: cognito.endpoint,
    COGNITO_USER_POOL_ID: userPoolId,
    COGNITO_CLIENT_ID: clientId,
    COGNITO_ISSUER: issuer,
    DATABASE_POOL_MAX: '5',
  });
  const pool = createPool(config, 'app');
  const systemPool = createPool(config, 'system', { max: 2 });
  const queue = new PgBossJobQueue({ connectionString: config.database.appUrl, queue: config.queue, mode: 'producer' });
  await queue.start();
  const events = new EventHub(config.database.appUrl);
  await events.start();
  const app = await buildApp({ config, pool, systemPool, queue, events, logger: false });
  apiUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  stopAll = async () => {
    await services?.close();
    // Keep-alive sockets from the client's fetch would otherwise hold app.close() open.
    app.server.closeAllConnections();
    await app.close();
    await queue.stop(500);
    await events.stop();
    await Promise.all([pool.end(), systemPool.end()]);
    await Promise.all([postgres.stop(), cognito.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  };
  profile = path.join(tmp, 'profile');
  services = await openProfile();
}, 120_000);
afterAll(() => stopAll?.(), 60_000);

function openProfile() {
  return createDesktopServices({
    paths: { userData: profile },
    secretStore: new FileSecretStore(path.join(profile, 'secrets')),
    engine: new InMemoryEngine(),
    models: new InMemoryModels(),
    cloud: { apiUrl, cognito: { endpoint: cognitoEndpoint, region: 'local', userPoolId, clientId } },
    // The real fetch; a test may swap the bearer token of the next API call to a forged one.
    fetch: (input, init) => {
      if (rewrites.token && String(input).startsWith(apiUrl)) {
        const headers = { ...(init?.headers as Record<string, string>), authorization: `Bearer ${rewrites.token}` };
        rewrites.token = null;
        return fetch(input, { ...init, headers });
      }
      return fetch(input, init);
    },
    shell: 'browser',
    version: '0.1.0',
    platform: 'linux',
    urlFor: (f) => f,
  });
}

/** The code cognito-local "emailed": it keeps it on the user in its pool file. */
function emailedCode(email: string): string {
  const db = JSON.parse(readFileSync(path.join(cognitoDir, '.cognito/db', `${userPoolId}.json`), 'utf8')) as {
    Users: Record<string, { Attributes: { Name: string; Value: string }[]; ConfirmationCode?: string }>;
  };
  const user = Object.values(db.Users).find((u) => u.Attributes.some((a) => a.Name === 'email' && a.Value === email));
  if (!user?.ConfirmationCode) throw new Error(`no code for ${email}`);
  return user.ConfirmationCode;
}

/** An access token for this pool, signed with cognito-local's own key, already expired. */
async function expiredToken(sub: string): Promise<string> {
  const file = path.join(
    path.dirname(require.resolve('cognito-local/package.json')),
    'lib/keys/cognitoLocal.private.json',
  );
  const { jwk } = JSON.parse(readFileSync(file, 'utf8')) as { jwk: Record<string, unknown> };
  const key = await importJWK({ ...jwk, alg: 'RS256' }, 'RS256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub, token_use: 'access', client_id: clientId, iss: issuer, iat: now - 7200, exp: now - 3600 })
    .setProtectedHeader({ alg: 'RS256', kid: 'CognitoLocal' })
    .sign(key);
}

const email = `desk-${Date.now()}@example.test`;
const PASSWORD = 'Desktop-Pass1';

describe('desktop ↔ Atelier Cloud (real API, Postgres, cognito-local)', () => {
  it('signs up, confirms with the emailed code, signs in and shows the plan and usage', async () => {
    const h = services.handlers;
    expect(await h['account:signUp']({ email, password: PASSWORD })).toEqual({ needsConfirmation: true });
    expect((await h['account:state']({})).pendingConfirmation).toBe(email);
    await h['account:confirm']({ email, code: emailedCode(email) });
    const changed = new Promise<AccountState>((resolve) =>
      services.events.on('account:changed', (s) => s.plan !== null && resolve(s)),
    );
    const state = await h['account:signIn']({ email, password: PASSWORD });
    expect(state).toMatchObject({ signedIn: true, email, plan: 'free', online: true, pendingConfirmation: null });
    expect(state.usage).toMatchObject({ used: 0, limit: 100 });
    expect((await changed).plan).toBe('free');
    const me = await h['account:me']({});
    expect(me).toMatchObject({ email, plan: 'free' });
    // Signing in does not turn Automatic's free local runs into metered cloud runs: it asks first.
    const asked = await h['router:explain']({ target: 'auto', count: 4 });
    expect(asked).toMatchObject({ target: 'local', askCloud: true, blocked: null });
    await h['settings:update']({ autoCloud: 'allow' });
    const explain = await h['router:explain']({ target: 'auto', count: 4 });
    expect(explain).toMatchObject({ target: 'cloud', cost: 'uses 4 of your 100 cloud images left this month' });
    // A plan limit is known before the click: more images than the plan's batch size.
    const tooMany = await h['router:explain']({ target: 'cloud', count: 8 });
    expect(tooMany).toMatchObject({ blocked: 'PLAN_REQUIRED', action: 'run_local' });
    expect(tooMany.warning).toMatch(/Batches of 8 need the Pro plan/);
  });

  it('with billing off, says "Upgrades are not available on this server" from the start, without configuration hints', async () => {
    const h = services.handlers;
    const state = await h['account:state']({});
    expect(state.billing).toEqual({ available: false, hasSubscription: false });
    const refused = await h['billing:upgrade']({}).then(
      () => null,
      (e: unknown) => e as AppError,
    );
    expect(refused?.code).toBe('BILLING_DISABLED');
    expect(refused?.userMessage).toBe('Upgrades are not available on this server.');
    expect(refused?.userMessage).not.toMatch(/STRIPE|key/i);
  });

  it('refreshes and retries once when the API says the access token expired', async () => {
    const me = await services.handlers['account:me']({});
    const before = services.cloud!.tokens()!.accessToken;
    rewrites.token = await expiredToken(me.id);
    await new Promise((r) => setTimeout(r, 1100)); // cognito-local issues identical tokens within a second
    const again = await services.handlers['account:me']({});
    expect(again.id).toBe(me.id);
    expect(services.cloud!.tokens()!.accessToken).not.toBe(before);
  });

  it('sends a cloud job once, reserves quota, and refunds it when canceled before it starts', async () => {
    const h = services.handlers;
    const running = new Promise<LocalJob>((resolve) =>
      services.events.on('jobs:changed', (j) => j.target === 'cloud' && j.cloudGenerationId !== null && resolve(j)),
    );
    const { jobs, decision } = await h['jobs:submit']({
      prompt: 'a red fox',
      target: 'cloud',
      steps: 2,
      width: 64,
      height: 64,
      count: 2,
    } as never);
    expect(decision).toMatchObject({ target: 'cloud', cost: 'uses 2 of your 100 cloud images left this month' });
    const job = await running;
    expect(job.id).toBe(jobs[0]!.id);
    expect(job.state).toBe('running');
    const gen = await services.cloud!.api.getGeneration(job.cloudGenerationId!);
    expect(gen).toMatchObject({ status: 'queued', params: { prompt: 'a red fox', count: 2 } });
    expect((await h['account:me']({})).usage.used).toBe(2);

    await h['jobs:cancel']({ jobId: job.id });
    expect((await h['jobs:list']({})).items.find((j) => j.id === job.id)?.state).toBe('canceled');
    expect((await services.cloud!.api.getGeneration(job.cloudGenerationId!)).status).toBe('canceled');
    expect((await h['account:me']({})).usage.used).toBe(0);
  });

  it('restores the session after a restart from the stored refresh token', async () => {
    await services.close();
    services = await openProfile();
    const state = await services.handlers['account:state']({});
    expect(state).toMatchObject({ signedIn: true, email, plan: 'free' });
    await services.handlers['account:signOut']({});
    expect((await services.handlers['account:state']({})).signedIn).toBe(false);
  });
});
