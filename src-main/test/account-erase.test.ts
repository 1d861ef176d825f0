// "Delete account" and "Export my data" through the desktop's IPC handlers, against the real
// cloud API (embedded Postgres, cognito-local, s3rver) started here on random ports. The deletion
// job itself is covered in cloud/test/account-deletion.test.ts; here: what the desktop sends,
// that it signs out, and that the export lands as a zip file with progress on the way.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { IpcEventPayload } from '@atelier/common';
import { buildApp } from '@atelier/cloud/app';
import { parseConfig } from '@atelier/cloud/config';
import { createPool } from '@atelier/cloud/db/pool';
import { migrate } from '@atelier/cloud/db/migrate';
import { EventHub } from '@atelier/cloud/events/hub';
import { PgBossJobQueue } from '@atelier/cloud/queue/pg-boss-job-queue';
import { ensureUserPool, signUpConfirmed, startCognitoLocal } from '@atelier/cloud/stack/cognito';
import { startPostgres } from '@atelier/cloud/stack/postgres';
import { startLocalS3 } from '@atelier/cloud/storage/local-s3';
import { createDesktopServices, type DesktopServices } from '../services/desktop-services.ts';
import { InMemorySecretStore } from '../services/secret-store.ts';
import { InMemoryEngine } from '../services/testing/in-memory-engine.ts';
import { InMemoryModels } from '../services/testing/in-memory-models.ts';

const port = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

const PASSWORD = 'Correct-horse1';
let tmp: string;
let stop: () => Promise<void>;
let cognito: { endpoint: string; userPoolId: string; clientId: string };
let apiUrl: string;
let adminUrl: string;
const opened: DesktopServices[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'atelier-desktop-erase-'));
  chmodSync(tmp, 0o755); // as root, Postgres runs as `postgres` and must reach its data dir
  const [pgPort, cognitoPort] = [await port(), await port()];
  const [postgres, cog, s3] = await Promise.all([
    startPostgres({ dataDir: path.join(tmp, 'pg'), port: pgPort, durable: false }),
    startCognitoLocal({ dataDir: path.join(tmp, 'cognito'), port: cognitoPort }),
    startLocalS3({ directory: path.join(tmp, 's3'), bucket: 'desktop-erase' }),
  ]);
  const admin = new pg.Client({ connectionString: postgres.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE atelier');
  await admin.end();
  const pool0 = await ensureUserPool(cog.endpoint);
  cognito = { endpoint: cog.endpoint, ...pool0 };
  adminUrl = postgres.url('atelier');
  await migrate(parseConfig({ DATABASE_URL: adminUrl, NODE_ENV: 'test' }));
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: adminUrl,
    COGNITO_REGION: 'local',
    COGNITO_ENDPOINT: cog.endpoint,
    COGNITO_USER_POOL_ID: pool0.userPoolId,
    COGNITO_CLIENT_ID: pool0.clientId,
    COGNITO_ISSUER: `${cog.issuerDomain}/${pool0.userPoolId}`,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
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
  stop = async () => {
    for (const s of opened) await s.close();
    app.server.closeAllConnections();
    await app.close();
    await queue.stop(500);
    await events.stop();
    await Promise.all([pool.end(), systemPool.end()]);
    await Promise.all([postgres.stop(), cog.stop(), s3.close()]);
    rmSync(tmp, { recursive: true, force: true });
  };
}, 120_000);
afterAll(() => stop?.(), 60_000);

async function signedInDesktop() {
  const email = `erase-${Date.now()}-${opened.length}@example.com`;
  const { sub } = await signUpConfirmed(cognito.endpoint, cognito, email, PASSWORD);
  const profile = mkdtempSync(path.join(tmp, 'profile-'));
  const revealed: string[] = [];
  const services = await createDesktopServices({
    paths: { userData: profile },
    secretStore: new InMemorySecretStore(),
    engine: new InMemoryEngine(),
    models: new InMemoryModels(),
    cloud: { apiUrl, cognito: { ...cognito, region: 'local' } },
    shell: 'browser',
    version: '0.1.0',
    platform: 'linux',
    urlFor: (f) => f,
    revealFile: (f) => void revealed.push(f),
  });
  opened.push(services);
  await services.handlers['account:signIn']({ email, password: PASSWORD });
  return { services, email, sub, profile, revealed };
}

async function query<T extends pg.QueryResultRow>(sql: string, values: unknown[]): Promise<T[]> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    return (await c.query<T>(sql, values)).rows;
  } finally {
    await c.end();
  }
}

describe('Export my data (desktop)', () => {
  it('asks the cloud for the export, downloads the zip into the exports folder with progress, and shows it', async () => {
    const d = await signedInDesktop();
    const progress: IpcEventPayload<'account:exportProgressed'>[] = [];
    const off = d.services.events.on('account:exportProgressed', (p) => void progress.push(p));
    const r = await d.services.handlers['account:export']({});
    off();
    expect(r.path.startsWith(path.join(d.profile, 'exports'))).toBe(true);
    expect(r.images).toBe(0);
    const zip = readFileSync(r.path);
    expect(statSync(r.path).size).toBe(r.bytes);
    expect(zip.subarray(0, 4).toString('latin1')).toBe('PK\u0003\u0004');
    expect(zip.toString('latin1')).toContain('atelier-export.json');
    expect(zip.toString('latin1')).toContain(d.email);
    expect(progress[0]).toEqual({ phase: 'preparing', receivedBytes: 0, totalBytes: null });
    expect(progress.some((p) => p.phase === 'downloading')).toBe(true);
    expect(progress.at(-1)).toEqual({ phase: 'saved', receivedBytes: r.bytes, totalBytes: r.bytes });
    expect(d.revealed).toEqual([r.path]);
  });
});

describe('Delete account (desktop)', () => {
  it('a wrong password is refused with the cloud’s message and the session stays', async () => {
    const d = await signedInDesktop();
    await expect(
      d.services.handlers['account:delete']({ email: d.email, password: 'Wrong-horse1' }),
    ).rejects.toMatchObject({ code: 'REAUTH_FAILED' });
    expect((await d.services.handlers['account:state']({})).signedIn).toBe(true);
    expect(await query('SELECT 1 FROM account_deletions WHERE user_id = $1', [d.sub])).toEqual([]);
  });

  it('deletes with the email and password, then signs out', async () => {
    const d = await signedInDesktop();
    const states: boolean[] = [];
    const off = d.services.events.on('account:changed', (s) => void states.push(s.signedIn));
    await d.services.handlers['account:delete']({ email: d.email, password: PASSWORD });
    off();
    expect((await d.services.handlers['account:state']({})).signedIn).toBe(false);
    expect(states.at(-1)).toBe(false);
    const rows = await query<{ user_id: string }>('SELECT user_id FROM account_deletions WHERE user_id = $1', [d.sub]);
    expect(rows).toEqual([{ user_id: d.sub }]);
    const marked = await query<{ deleting: boolean }>(
      'SELECT deleting_at IS NOT NULL AS deleting FROM users WHERE id = $1',
      [d.sub],
    );
    expect(marked).toEqual([{ deleting: true }]);
  });
});
