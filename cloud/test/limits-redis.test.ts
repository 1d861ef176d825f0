// Limits shared across replicas: TWO real API processes (node src/server.ts) count one user's
// requests in the same Redis (the machine's service on 127.0.0.1:6379), so together they allow
// exactly the configured limit — not twice it. Each run uses its own key prefix.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiProcessEnv, startApiProcess, type ApiProcess } from './support/api-process.ts';
import { auth, createTestDatabase, createTestUser, type TestUser } from './support/index.ts';

const REDIS_URL = process.env.ATELIER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const USER_LIMIT = 6;
const IP_LIMIT = 40;

type Replica = ApiProcess;

const prefix = `atelier-test:${randomBytes(6).toString('hex')}:`;
const replicas: Replica[] = [];
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  const db = await createTestDatabase();
  const env = apiProcessEnv(db, {
    PATH: process.env.PATH ?? '',
    REDIS_URL,
    RATE_LIMIT_REDIS_PREFIX: prefix,
    RATE_LIMIT_USER_PER_MINUTE: String(USER_LIMIT),
    RATE_LIMIT_IP_PER_MINUTE: String(IP_LIMIT),
  });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  replicas.push(...(await Promise.all([startApiProcess(env), startApiProcess(env)])));
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const get = (r: Replica, url: string, user?: TestUser) =>
  fetch(`${r.url}${url}`, { headers: user ? auth(user) : {} }).then(async (res) => ({
    status: res.status,
    body: (await res.json()) as { error?: { code: string } },
    retryAfter: res.headers.get('retry-after'),
  }));

describe('limits shared across two API processes (Redis)', () => {
  it('each replica says it counts in Redis', () => {
    for (const r of replicas) {
      const listening = r.lines
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.msg === 'api listening');
      expect(listening).toMatchObject({ limitsStore: 'redis' });
    }
  });

  it(`one user's ${USER_LIMIT} requests per minute are allowed across both replicas together, the next is 429 RATE_LIMITED`, async () => {
    const statuses: number[] = [];
    // Alternate replicas: each alone would allow all of these.
    for (let i = 0; i < USER_LIMIT; i++) statuses.push((await get(replicas[i % 2]!, '/v1/me', alice)).status);
    expect(statuses).toEqual(Array(USER_LIMIT).fill(200));
    for (const r of replicas) {
      const refused = await get(r, '/v1/me', alice);
      expect(refused.status).toBe(429);
      expect(refused.body.error?.code).toBe('RATE_LIMITED');
      expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    }
    // Another user has their own budget on both replicas.
    expect((await get(replicas[0]!, '/v1/me', bob)).status).toBe(200);
    expect((await get(replicas[1]!, '/v1/me', bob)).status).toBe(200);
  });

  it(`the per-IP limit (${IP_LIMIT} per minute) is one budget across both replicas`, async () => {
    // Requests so far from this address count too; keep going on both until refused.
    let accepted = 0;
    let refusedAt = -1;
    for (let i = 0; i < IP_LIMIT * 2 && refusedAt < 0; i++) {
      const res = await get(replicas[i % 2]!, '/v1/plans');
      if (res.status === 200) accepted++;
      else {
        expect(res.status).toBe(429);
        expect(res.body.error?.code).toBe('RATE_LIMITED');
        refusedAt = i;
      }
    }
    // 10 requests earlier in this file (6 + 2 + 2), then /v1/plans until the shared budget is spent.
    expect(refusedAt).toBeGreaterThan(0);
    expect(accepted).toBe(IP_LIMIT - (USER_LIMIT + 4));
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${prefix}*`);
      expect(keys.some((k) => k.includes('ip:'))).toBe(true);
      expect(keys.some((k) => k.includes(`user:${alice.sub}`))).toBe(true);
    } finally {
      await redis.quit();
    }
  });
});
