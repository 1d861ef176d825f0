import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystemTx } from '../src/db/tx.ts';
import { publishEvent } from '../src/events/publish.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';

// Two API "processes": separate Fastify instances, pools and LISTEN connections on one database.
let a: TestApp;
let b: TestApp;
let urlB: string;
let alice: TestUser;
let bob: TestUser;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  const db = await createTestDatabase();
  [a, b] = await Promise.all([buildTestApp({ db }), buildTestApp({ db })]);
  urlB = (await b.app.listen({ host: '127.0.0.1', port: 0 })).replace('http', 'ws');
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
});
afterAll(async () => {
  for (const s of sockets) s.terminate();
  await Promise.all([a.close(), b.close()]);
});

interface Conn {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
  next(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

function connect(protocols?: string[]): Conn {
  const ws = new WebSocket(`${urlB}/v1/events`, protocols);
  sockets.push(ws);
  const messages: Record<string, unknown>[] = [];
  const waiters: { pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] =
    [];
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    messages.push(m);
    for (const w of [...waiters])
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  return {
    ws,
    messages,
    closed,
    next: (pred) =>
      new Promise((resolve) => {
        const hit = messages.find(pred);
        if (hit) return resolve(hit);
        waiters.push({ pred, resolve });
      }),
  };
}
const opened = (c: Conn) => new Promise<void>((r) => c.ws.once('open', () => r()));

describe('/v1/events', () => {
  it('an event produced through one API process reaches a socket on the other', async () => {
    const c = connect();
    await opened(c);
    c.ws.send(JSON.stringify({ type: 'auth', token: alice.accessToken }));
    expect(await c.next((m) => m.type === 'ready')).toEqual({ type: 'ready', userId: alice.sub });
    // Submit through process A; the socket is on process B.
    const res = await a.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: auth(alice),
      payload: { prompt: 'hello' },
    });
    expect(res.statusCode).toBe(202);
    const queued = await c.next((m) => m.type === 'generation.queued');
    expect((queued.generation as { id: string }).id).toBe(res.json().id);
    const usage = await c.next((m) => m.type === 'usage.changed');
    expect(usage).toMatchObject({ usage: { used: 1, limit: 100 } });
    // The worker publishes with its own connection: same path.
    await withSystemTx(a.systemPool, (tx) =>
      publishEvent(tx, alice.sub, { type: 'generation.started', generationId: res.json().id }),
    );
    await c.next((m) => m.type === 'generation.started');
  });

  it('delivers only the user’s own events, and nothing from a rolled-back transaction', async () => {
    const c = connect(['atelier.v1', `bearer.${bob.accessToken}`]);
    await c.next((m) => m.type === 'ready');
    expect(c.ws.protocol).toBe('atelier.v1');
    await a.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: auth(alice),
      payload: { prompt: 'not for bob' },
    });
    await expect(
      withSystemTx(a.systemPool, async (tx) => {
        await publishEvent(tx, bob.sub, { type: 'plan.changed', plan: 'pro' });
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    await withSystemTx(a.systemPool, (tx) => publishEvent(tx, bob.sub, { type: 'plan.changed', plan: 'free' }));
    const m = await c.next((x) => x.type === 'plan.changed');
    expect(m).toEqual({ type: 'plan.changed', plan: 'free' });
    expect(c.messages.map((x) => x.type)).toEqual(['ready', 'plan.changed']);
  });

  it('closes with 4401 and the code on a bad token; a token in the URL is not accepted', async () => {
    const bad = connect();
    await opened(bad);
    bad.ws.send(JSON.stringify({ type: 'auth', token: 'nope' }));
    expect(await bad.closed).toEqual({ code: 4401, reason: 'AUTH_INVALID_TOKEN' });
    const ws = new WebSocket(`${urlB}/v1/events?token=${alice.accessToken}`);
    sockets.push(ws);
    const first = await new Promise<string>((resolve) => {
      ws.on('message', (d) => resolve(String(d)));
      ws.on('open', () => ws.send(JSON.stringify({ type: 'ping' })));
      ws.on('close', (code, reason) => resolve(`close ${code} ${String(reason)}`));
    });
    expect(first).toBe('close 4401 AUTH_REQUIRED');
  });
});
