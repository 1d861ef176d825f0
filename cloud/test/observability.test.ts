// Structured request logs carry the request id on every request and the user id on every
// authenticated one (never the token); an unexpected error reaches error tracking with the user
// id and request id, scrubbed.
import { createTransport } from '@sentry/node';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.ts';
import { createErrorTracker } from '../src/observability/error-tracking.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
const sent: string[] = [];
let t: TestApp;
let user: TestUser;

beforeAll(async () => {
  const db = await createTestDatabase();
  const tracker = createErrorTracker(
    { sentryDsn: 'https://public@sentry.example/1', environment: 'test', release: null },
    {
      transport: (options) =>
        createTransport(options, async (req) => {
          sent.push(typeof req.body === 'string' ? req.body : Buffer.from(req.body).toString('utf8'));
          return { statusCode: 200 };
        }),
    },
  );
  t = await buildTestApp({
    db,
    overrides: {
      logger: createLogger({ logLevel: 'info' }, sink),
      errorTracker: tracker,
      // An unexpected failure inside a route (a bug): its message names a presigned URL and a token.
      resolveModel: () => {
        throw new Error(
          `catalogue broke reading https://bucket.s3/x.png?X-Amz-Signature=abc123 with ${user.accessToken}`,
        );
      },
    },
  });
  user = await createTestUser();
});
afterAll(async () => t?.close());

const completed = (reqId: string) => lines.find((l) => l.reqId === reqId && l.msg === 'request completed');

describe('request logs', () => {
  it('an authenticated request logs its request id and user id, and no token', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/v1/me',
      headers: { ...auth(user), 'x-request-id': 'obs-me-1' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe('obs-me-1');
    expect(lines.find((l) => l.reqId === 'obs-me-1' && l.msg === 'incoming request')).toBeDefined();
    expect(completed('obs-me-1')).toMatchObject({ reqId: 'obs-me-1', userId: user.sub, res: { statusCode: 200 } });
    expect(JSON.stringify(lines)).not.toContain(user.accessToken);
  });

  it('a public request logs its request id and no user', async () => {
    await t.app.inject({ method: 'GET', url: '/v1/plans', headers: { 'x-request-id': 'obs-plans-1' } });
    const line = completed('obs-plans-1');
    expect(line).toMatchObject({ reqId: 'obs-plans-1', res: { statusCode: 200 } });
    expect(line).not.toHaveProperty('userId');
  });

  it('a refused token logs the request id and no user id', async () => {
    await t.app.inject({
      method: 'GET',
      url: '/v1/me',
      headers: { authorization: 'Bearer not-a-token', 'x-request-id': 'obs-bad-1' },
    });
    expect(completed('obs-bad-1')).toMatchObject({ reqId: 'obs-bad-1', res: { statusCode: 401 } });
    expect(completed('obs-bad-1')).not.toHaveProperty('userId');
  });
});

describe('error tracking', () => {
  it('a 500 is reported with the user id and request id, without the token or the presigned query; 4xx are not', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: { ...auth(user), 'x-request-id': 'obs-500-1' },
      payload: { prompt: 'a secret garden party for my sister', width: 64, height: 64, steps: 1 },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ error: { code: 'INTERNAL' } });
    // A client error is not an error of ours.
    const bad = await t.app.inject({ method: 'POST', url: '/v1/generations', headers: auth(user), payload: {} });
    expect(bad.statusCode).toBe(400);
    await t.app.errorTracker.close(2_000);
    expect(sent.length).toBe(1);
    const body = sent[0]!;
    expect(body).toContain(`"id":"${user.sub}"`);
    expect(body).toContain('"request_id":"obs-500-1"');
    expect(body).toContain('catalogue broke reading https://bucket.s3/x.png');
    for (const secret of [user.accessToken, 'X-Amz-Signature', 'abc123', 'secret garden party'])
      expect(body).not.toContain(secret);
    // The log line of that request carries the user id too.
    expect(completed('obs-500-1')).toMatchObject({ userId: user.sub, res: { statusCode: 500 } });
  });
});
