/**
 * Issue 11, the events socket: capped per IP and per user, one authentication per socket, and a
 * `resync` to every open socket after the LISTEN connection comes back (events committed while it
 * was down are not delivered by NOTIFY).
 */
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystemTx } from '../src/db/tx.ts';
import { publishEvent } from '../src/events/publish.ts';
import { buildTestApp, createTestDatabase, createTestUser, type TestApp, type TestUser } from './support/index.ts';

let t: TestApp;
let url: string;
let alice: TestUser;
let bob: TestUser;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase({ EVENT_SOCKETS_PER_IP: '4', EVENT_SOCKETS_PER_USER: '2' }) });
  url = (await t.app.listen({ host: '127.0.0.1', port: 0 })).replace('http', 'ws');
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
});
afterAll(async () => {
  for (const s of sockets) s.terminate();
  await t.close();
});

interface Conn {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  next(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

function connect(): Conn {
  const ws = new WebSocket(`${url}/v1/events`, ['atelier.v1']);
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
  return {
    ws,
    messages,
    opened: new Promise<void>((r) => ws.once('open', () => r())),
    closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) }))),
    next: (pred) =>
      new Promise((resolve) => {
        const hit = messages.find(pred);
        if (hit) return resolve(hit);
        waiters.push({ pred, resolve });
      }),
  };
}

async function signedIn(u: TestUser): Promise<Conn> {
  const c = connect();
  await c.opened;
  c.ws.send(JSON.stringify({ type: 'auth', token: u.accessToken }));
  await c.next((m) => m.type === 'ready');
  return c;
}

const close = async (cs: Conn[]) => {
  for (const c of cs) {
    c.ws.close();
    await c.closed;
  }
};

describe('event socket limits', () => {
  it('a third socket of one user is closed with 4429 RATE_LIMITED; closing one frees its slot', async () => {
    const [s1, s2] = [await signedIn(alice), await signedIn(alice)];
    const s3 = connect();
    await s3.opened;
    s3.ws.send(JSON.stringify({ type: 'auth', token: alice.accessToken }));
    expect(await s3.closed).toEqual({ code: 4429, reason: 'RATE_LIMITED' });
    expect(s3.messages).toEqual([]);
    await close([s1]);
    const s4 = await signedIn(alice);
    await close([s2, s4]);
  });

  it('a fifth socket from one address is closed with 4429 before it can authenticate', async () => {
    const open = [await signedIn(alice), await signedIn(bob), connect(), connect()];
    await Promise.all(open.slice(2).map((c) => c.opened));
    const fifth = connect();
    expect(await fifth.closed).toEqual({ code: 4429, reason: 'RATE_LIMITED' });
    await close(open);
    const again = await signedIn(bob);
    await close([again]);
  });

  it('repeated auth frames: one verification, one `ready`, one subscription', async () => {
    const c = connect();
    await c.opened;
    for (let i = 0; i < 3; i++) c.ws.send(JSON.stringify({ type: 'auth', token: bob.accessToken }));
    await c.next((m) => m.type === 'ready');
    await withSystemTx(t.systemPool, (tx) => publishEvent(tx, bob.sub, { type: 'plan.changed', plan: 'free' }));
    await c.next((m) => m.type === 'plan.changed');
    await withSystemTx(t.systemPool, (tx) => publishEvent(tx, bob.sub, { type: 'gallery.changed', imageIds: [] }));
    await c.next((m) => m.type === 'gallery.changed');
    expect(c.messages.map((m) => m.type)).toEqual(['ready', 'plan.changed', 'gallery.changed']);
    await close([c]);
  });
});

describe('LISTEN reconnect', () => {
  it('after the listener connection is killed, every open socket gets `resync`, and events flow again', async () => {
    const [a1, b1] = [await signedIn(alice), await signedIn(bob)];
    const before = t.events.reconnects;
    await t.adminPool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = 'atelier-events' AND datname = current_database()`,
    );
    expect(await a1.next((m) => m.type === 'resync')).toEqual({ type: 'resync' });
    expect(await b1.next((m) => m.type === 'resync')).toEqual({ type: 'resync' });
    expect(t.events.reconnects).toBe(before + 1);
    await withSystemTx(t.systemPool, (tx) => publishEvent(tx, alice.sub, { type: 'plan.changed', plan: 'free' }));
    await a1.next((m) => m.type === 'plan.changed');
    await close([a1, b1]);
  });
});

describe('the per-IP request limit covers the socket upgrade', () => {
  it('a reconnect loop past the per-IP limit is refused with 429 before the upgrade', async () => {
    const r = await buildTestApp({ db: await createTestDatabase({ RATE_LIMIT_IP_PER_MINUTE: '2' }) });
    try {
      const base = (await r.app.listen({ host: '127.0.0.1', port: 0 })).replace('http', 'ws');
      const attempt = () =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(`${base}/v1/events`, ['atelier.v1']);
          ws.once('open', () => {
            ws.close();
            resolve('open');
          });
          ws.once('unexpected-response', (_req, res) => {
            resolve(String(res.statusCode));
            ws.terminate();
          });
          ws.once('error', () => undefined);
        });
      const outcomes: string[] = [];
      for (let i = 0; i < 4; i++) outcomes.push(await attempt());
      expect(outcomes).toEqual(['open', 'open', '429', '429']);
    } finally {
      await r.close();
    }
  });
});
