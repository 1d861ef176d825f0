/**
 * Issue 15's request fields (initImage, mask, strength) exist before cloud inputs do: until the
 * worker can fetch uploaded pictures, the API refuses a request naming one with 422
 * CLOUD_INPUTS_UNAVAILABLE before anything is reserved, queued or stored.
 */
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
beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
});
afterAll(async () => {
  await t?.close();
});

const submit = (u: TestUser, body: Record<string, unknown>) =>
  t.app.inject({ method: 'POST', url: '/v1/generations', headers: auth(u), payload: body });

describe('POST /v1/generations with a starting image', () => {
  it('is refused with 422 CLOUD_INPUTS_UNAVAILABLE, nothing reserved, no generation row', async () => {
    const u = await createTestUser();
    expect((await t.app.inject({ url: '/v1/me', headers: auth(u) })).statusCode).toBe(200);
    for (const body of [
      { prompt: 'a fox', initImage: 'img_01J0000000AAAAAAAAAAAA', strength: 0.5 },
      { prompt: 'a fox', initImage: 'in.png', mask: 'mask.png' },
    ]) {
      const r = await submit(u, body);
      expect(r.statusCode).toBe(422);
      expect(r.json().error.code).toBe('CLOUD_INPUTS_UNAVAILABLE');
    }
    const me = (await t.app.inject({ url: '/v1/me', headers: auth(u) })).json();
    expect(me.usage.used).toBe(0);
    const rows = await t.adminPool.query('SELECT count(*)::int AS n FROM generations WHERE user_id = $1', [u.sub]);
    expect(rows.rows[0].n).toBe(0);
  });

  it('a mask or strength without a starting image is a 400 naming the field', async () => {
    const u = await createTestUser();
    const r = await submit(u, { prompt: 'a fox', mask: 'mask.png' });
    expect(r.statusCode).toBe(400);
    expect(JSON.stringify(r.json())).toContain('mask needs a starting image');
  });
});
