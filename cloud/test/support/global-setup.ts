/**
 * Vitest globalSetup for the cloud project: ONE embedded Postgres and ONE cognito-local for the
 * whole run (random ports, data under /tmp), a template database migrated once (test files clone
 * it with createTestDatabase()), and a user pool + app client. Connection info reaches tests
 * through `inject('atelier')`.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { parseConfig } from '../../src/config.ts';
import { migrate } from '../../src/db/migrate.ts';
import { ensureUserPool, startCognitoLocal } from '../../src/stack/cognito.ts';
import { startPostgres } from '../../src/stack/postgres.ts';
import { freePort } from './free-port.ts';

export interface TestStackInfo {
  adminUrlBase: string;
  templateDb: string;
  cognitoEndpoint: string;
  userPoolId: string;
  clientId: string;
  issuer: string;
  tmpDir: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    atelier: TestStackInfo;
  }
}

export const TEMPLATE_DB = 'atelier_template';

export default async function setup(project: TestProject) {
  const tmpDir = mkdtempSync(path.join(tmpdir(), 'atelier-cloud-test-'));
  chmodSync(tmpDir, 0o755); // as root the server runs as `postgres`, which must reach its data dir
  const [pgPort, cognitoPort] = [await freePort(), await freePort()];
  const [postgres, cognito] = await Promise.all([
    startPostgres({ dataDir: path.join(tmpDir, 'pg'), port: pgPort, durable: false, maxConnections: 300 }),
    startCognitoLocal({ dataDir: path.join(tmpDir, 'cognito'), port: cognitoPort }),
  ]);
  const admin = new pg.Client({ connectionString: postgres.url() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  await admin.end();
  const pool = await ensureUserPool(cognito.endpoint);
  await migrate(parseConfig({ DATABASE_URL: postgres.url(TEMPLATE_DB), NODE_ENV: 'test' }));
  const info: TestStackInfo = {
    adminUrlBase: postgres.url(''),
    templateDb: TEMPLATE_DB,
    cognitoEndpoint: cognito.endpoint,
    userPoolId: pool.userPoolId,
    clientId: pool.clientId,
    issuer: `${cognito.issuerDomain}/${pool.userPoolId}`,
    tmpDir,
  };
  project.provide('atelier', info);
  return async () => {
    await Promise.all([postgres.stop(), cognito.stop()]);
    rmSync(tmpDir, { recursive: true, force: true });
  };
}
