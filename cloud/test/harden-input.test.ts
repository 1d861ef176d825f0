/**
 * Issue 11, input at the edges: text Postgres cannot store is refused by the shared schemas, ids
 * are checked by prefix before SQL, a long CJK prompt is accepted (the event limit is in bytes),
 * router errors get the standard body and headers, and a signed `null` webhook is a 400.
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
import { peerBillingService, signWebhook, StripePeer } from './support/stripe-peer.ts';

let t: TestApp;
let alice: TestUser;

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  alice = await createTestUser();
  expect((await t.app.inject({ url: '/v1/me', headers: auth(alice) })).statusCode).toBe(200);
});
afterAll(() => t.close());

const NUL = '\u0000';
const LONE_HIGH = '\uD800';
const LONE_LOW = '\uDC00';

async function rowCounts() {
  const r = await t.adminPool.query<{ g: number; b: number; l: number }>(
    `SELECT (SELECT count(*)::int FROM generations) AS g, (SELECT count(*)::int FROM boards) AS b,
            (SELECT count(*)::int FROM usage_ledger) AS l`,
  );
  return r.rows[0]!;
}

function expectValidation(res: { statusCode: number; json(): unknown }, field: string) {
  expect(res.statusCode).toBe(400);
  const body = res.json() as { error: { code: string; details: { fields: { field: string; message: string }[] } } };
  expect(body.error.code).toBe('VALIDATION_FAILED');
  expect(body.error.details.fields.map((f) => f.field)).toContain(field);
}

describe('text Postgres cannot store is refused with VALIDATION_FAILED, and nothing is written', () => {
  for (const [what, bad] of [
    ['NUL', `a${NUL}b`],
    ['a lone high surrogate', `a${LONE_HIGH}b`],
    ['a lone low surrogate', `a${LONE_LOW}b`],
  ] as const) {
    it(`${what} in a prompt, a negative prompt, a board name and search text`, async () => {
      const before = await rowCounts();
      const post = (payload: unknown) =>
        t.app.inject({
          method: 'POST',
          url: '/v1/generations',
          headers: { ...auth(alice), 'content-type': 'application/json' },
          payload: JSON.stringify(payload),
        });
      expectValidation(await post({ prompt: bad }), 'prompt');
      expectValidation(await post({ prompt: 'ok', negativePrompt: bad }), 'negativePrompt');
      const board = await t.app.inject({
        method: 'POST',
        url: '/v1/boards',
        headers: { ...auth(alice), 'content-type': 'application/json' },
        payload: JSON.stringify({ name: bad }),
      });
      expectValidation(board, 'name');
      const search = await t.app.inject({
        url: `/v1/images?q=${encodeURIComponent(bad.replace(LONE_HIGH, '').replace(LONE_LOW, '')) || 'x'}${
          what === 'NUL' ? '' : '%ED%A0%80'
        }`,
        headers: auth(alice),
      });
      if (what === 'NUL') expectValidation(search, 'q');
      else expect(search.statusCode).toBeLessThan(500);
      expect(await rowCounts()).toEqual(before);
    });
  }

  it('the message says what to fix', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: auth(alice),
      payload: { prompt: `x${NUL}` },
    });
    expect(res.json().error.message).toMatch(/prompt must not contain NUL characters/);
  });
});

describe('every :id is checked by its prefix before SQL', () => {
  const routes: [string, string][] = [
    ['GET', '/v1/generations/'],
    ['POST', '/v1/generations/{}/cancel'],
    ['GET', '/v1/images/'],
    ['PATCH', '/v1/images/'],
    ['DELETE', '/v1/images/'],
    ['PATCH', '/v1/boards/'],
    ['DELETE', '/v1/boards/'],
  ];
  const ids = ['nope', 'img_01ARZ3NDEKTSV4RRFFQ69G5FAV'.replace('img', 'xyz'), '%00', 'gen_%00', '%ED%A0%80'];
  for (const [method, template] of routes)
    it(`${method} ${template}: a malformed id is 400 VALIDATION_FAILED`, async () => {
      for (const id of ids) {
        const url = template.includes('{}') ? template.replace('{}', id) : `${template}${id}`;
        const res = await t.app.inject({
          method: method as 'GET',
          url,
          headers: auth(alice),
          ...(method === 'PATCH'
            ? { payload: method === 'PATCH' && url.includes('boards') ? { name: 'x' } : { starred: true } }
            : {}),
        });
        // Invalid UTF-8 (%ED%A0%80 is a lone surrogate) is refused by the router itself: BAD_REQUEST.
        expect({ url, status: res.statusCode, code: res.json().error?.code }).toEqual({
          url,
          status: 400,
          code: id === '%ED%A0%80' ? 'BAD_REQUEST' : 'VALIDATION_FAILED',
        });
      }
    });

  it('a well-formed id of the wrong kind is refused too (an img_ id on a generation route)', async () => {
    const res = await t.app.inject({ url: '/v1/generations/img_01ARZ3NDEKTSV4RRFFQ69G5FAV', headers: auth(alice) });
    expect(res.statusCode).toBe(400);
  });
});

describe('a long CJK prompt', () => {
  it('2,000 + 2,000 CJK characters are accepted (the NOTIFY limit is in bytes, and the event carries the id)', async () => {
    const cjk = '山'.repeat(2000);
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: auth(alice),
      payload: { prompt: cjk, negativePrompt: '水'.repeat(2000) },
    });
    expect(res.statusCode).toBe(202);
    expect(res.json().params.prompt).toBe(cjk);
    await t.adminPool.query(`UPDATE generations SET status = 'canceled' WHERE user_id = $1`, [alice.sub]);
  });
});

describe('router errors get the standard error body and the security headers', () => {
  for (const url of ['/v1/images/%E0%A4%A', '/v1/images/%zz', '/%E0%A4%A'])
    it(`bad percent-encoding: ${url}`, async () => {
      const res = await t.app.inject({ url, headers: auth(alice) });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'BAD_REQUEST', message: expect.any(String) } });
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-request-id']).toBeTruthy();
    });

  it('an over-long parameter', async () => {
    const res = await t.app.inject({ url: `/v1/images/img_${'A'.repeat(500)}`, headers: auth(alice) });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(res.json().error.code).toMatch(/^(BAD_REQUEST|NOT_FOUND|VALIDATION_FAILED)$/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('a signed webhook body of null', () => {
  it('is a 400 with the standard body, and records nothing', async () => {
    const peer = await StripePeer.start();
    try {
      const svc = peerBillingService({
        peer,
        webhookSecret: 'whsec_null',
        proPriceId: 'price_pro',
        appPool: t.pool,
        systemPool: t.systemPool,
      });
      for (const body of [null, [], 42, 'text', { id: 'evt_1', type: 'x', created: 1, data: null }]) {
        const { payload, headers } = signWebhook(body as never, 'whsec_null', { timestamp: new Date() });
        const e = await svc.handleWebhook(Buffer.from(payload), headers['stripe-signature']).then(
          () => null,
          (err: unknown) => err,
        );
        expect(e).toMatchObject({ code: 'BAD_REQUEST' });
      }
      const n = await t.adminPool.query('SELECT count(*)::int AS n FROM stripe_events');
      expect(n.rows[0]).toEqual({ n: 0 });
    } finally {
      await peer.close();
    }
  });
});
