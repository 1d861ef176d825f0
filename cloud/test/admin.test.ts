import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';

let t: TestApp;
let user: TestUser;
const cli = path.join(import.meta.dirname, '../src/admin/main.ts');

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  user = await createTestUser();
  await t.app.inject({ url: '/v1/me', headers: auth(user) });
});
afterAll(() => t.close());

function admin(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: t.config.database.url, LOG_LEVEL: 'silent' },
  });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
}

describe('npm run admin', () => {
  it('set-plan, set-usage, usage and list-users act on the database the API reads', async () => {
    expect(admin('set-plan', user.email, 'pro')).toMatchObject({
      code: 0,
      out: expect.stringContaining('plan pro, 0/1000'),
    });
    expect(admin('set-usage', user.email, '42').out).toContain('42/1000');
    expect(admin('usage', user.email).out).toContain('plan pro, 42/1000');
    expect(admin('list-users').out).toContain(`${user.email}\tpro\t${user.sub}`);
    const me = (await t.app.inject({ url: '/v1/me', headers: auth(user) })).json();
    expect(me).toMatchObject({ plan: 'pro', usage: { used: 42, limit: 1000 } });
    const ledger = await t.adminPool.query(`SELECT kind, amount FROM usage_ledger WHERE user_id = $1`, [user.sub]);
    expect(ledger.rows).toEqual([{ kind: 'adjust', amount: 42 }]);
  });

  it('explains itself and fails clearly', () => {
    expect(admin('--help')).toMatchObject({ code: 0, out: expect.stringContaining('set-plan <user> <free|pro>') });
    expect(admin('usage', 'nobody@example.test')).toMatchObject({
      code: 1,
      err: expect.stringContaining('No user with email'),
    });
    expect(admin('set-plan', user.email, 'gold')).toMatchObject({
      code: 1,
      err: expect.stringContaining('plan must be one of'),
    });
    expect(admin('frobnicate').code).toBe(1);
  });
});
