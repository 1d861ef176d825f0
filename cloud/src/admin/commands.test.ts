import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@atelier/common';
import { cognitoCall, passwordAuth } from '../stack/cognito.ts';
import { createPool, type Pool } from '../db/pool.ts';
import { createTestDatabase, stackInfo, TEST_PASSWORD } from '../../test/support/index.ts';
import { confirmSignUp, resolveUser, setPlan, setUsageCommand, usage } from './commands.ts';

let pool: Pool;
beforeAll(async () => {
  const db = await createTestDatabase();
  pool = createPool(db.config, 'system', { max: 2 });
});
afterAll(async () => {
  await pool?.end();
});

const addUser = async (email: string) => {
  const id = randomUUID();
  await pool.query('INSERT INTO users (id, email) VALUES ($1, $2)', [id, email]);
  return id;
};

describe('admin commands take a user id wherever they take an email', () => {
  it('resolves a unique email, and refuses a shared one by listing the ids to use instead', async () => {
    const solo = await addUser(`solo-${randomUUID()}@example.test`);
    const shared = `twin-${randomUUID()}@example.test`;
    const a = await addUser(shared);
    const b = await addUser(shared.toUpperCase());
    expect(
      (await resolveUser(pool, (await pool.query('SELECT email FROM users WHERE id = $1', [solo])).rows[0].email)).id,
    ).toBe(solo);
    const err = await resolveUser(pool, shared).catch((e: unknown) => e);
    expect(AppError.is(err, 'CONFLICT')).toBe(true);
    expect((err as AppError).message).toBe(
      `2 users have email ${shared}: ${a}, ${b}. Pass one of these ids instead of the email.`,
    );
    // The way out works: each id reaches its own user.
    expect(await setPlan(pool, b, 'pro')).toMatch(new RegExp(`^${shared.toUpperCase()} \\(${b}\\): plan pro, 0/1000`));
    expect(await usage(pool, a)).toMatch(/plan free, 0\/100/);
    expect(await setUsageCommand(pool, a, '7')).toMatch(/plan free, 7\/100/);
  });

  it('says plainly when there is no such user, by id or by email', async () => {
    await expect(resolveUser(pool, 'no-such-id')).rejects.toThrow(
      /No user with id no-such-id. Run `npm run admin -- list-users`/,
    );
    await expect(resolveUser(pool, 'nobody@example.test')).rejects.toThrow(/No user with email nobody@example.test/);
    await expect(setUsageCommand(pool, 'x', 'abc')).rejects.toThrow('n must be a whole number ≥ 0, not "abc"');
  });
});

describe('admin confirm', () => {
  it('confirms a sign-up by email or by user id, after which the person can sign in', async () => {
    const s = stackInfo();
    const cognito = { endpoint: s.cognitoEndpoint, userPoolId: s.userPoolId, region: 'local' };
    for (const by of ['email', 'id'] as const) {
      const email = `confirm-${by}-${randomUUID()}@example.test`;
      const up = await cognitoCall<{ UserSub: string }>(s.cognitoEndpoint, 'SignUp', {
        ClientId: s.clientId,
        Username: email,
        Password: TEST_PASSWORD,
        UserAttributes: [{ Name: 'email', Value: email }],
      });
      await expect(passwordAuth(s.cognitoEndpoint, s.clientId, email, TEST_PASSWORD)).rejects.toThrow(
        /UserNotConfirmed/,
      );
      const ref = by === 'email' ? email : up.UserSub;
      expect(await confirmSignUp(cognito, ref)).toBe(`${ref}: sign-up confirmed; they can sign in now.`);
      expect((await passwordAuth(s.cognitoEndpoint, s.clientId, email, TEST_PASSWORD)).accessToken).toBeTruthy();
    }
  });

  it('names the missing sign-up, and points at the AWS command outside the local stack', async () => {
    const s = stackInfo();
    await expect(
      confirmSignUp({ endpoint: s.cognitoEndpoint, userPoolId: s.userPoolId, region: 'local' }, 'ghost@example.test'),
    ).rejects.toThrow('No sign-up for ghost@example.test in the user pool. Check the address, or sign up first.');
    await expect(
      confirmSignUp(
        { endpoint: 'https://cognito-idp.eu-west-1.amazonaws.com', userPoolId: 'eu-west-1_x', region: 'eu-west-1' },
        'a@b.c',
      ),
    ).rejects.toThrow(/aws cognito-idp admin-confirm-sign-up --user-pool-id eu-west-1_x/);
  });
});
