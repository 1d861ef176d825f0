import { mkdtempSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { CloudEvent } from '@atelier/common';
import { backoffDelay, createCloudClient, type CloudClient } from './cloud-client.ts';
import { FileSecretStore, InMemorySecretStore, type SecretStore } from './secret-store.ts';
import { startTestCognito, type TestCognito } from './testing/cognito-local.ts';

let cognito: TestCognito;
const clients: CloudClient[] = [];
beforeAll(async () => {
  cognito = await startTestCognito();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await cognito?.stop();
});

const PASSWORD = 'Correct-horse1';
function client(
  apiUrl: string,
  secretStore: SecretStore = new InMemorySecretStore(),
  extra: { backoffMs?: number; retry?: { attempts?: number; baseMs?: number; maxMs?: number } } = {},
) {
  const c = createCloudClient({
    config: {
      apiUrl,
      cognito: {
        endpoint: cognito.endpoint,
        region: 'local',
        userPoolId: cognito.userPoolId,
        clientId: cognito.clientId,
      },
    },
    secretStore,
    backoffMs: extra.backoffMs ?? 20,
    maxBackoffMs: 200,
    retry: { baseMs: 10, maxMs: 50, ...extra.retry },
  });
  clients.push(c);
  return c;
}
let n = 0;
const freshEmail = () => `user${Date.now()}-${n++}@example.com`;

async function signedUpUser(c: CloudClient): Promise<string> {
  const email = freshEmail();
  await c.signUp(email, PASSWORD);
  await c.confirm(email, cognito.codeFor(email));
  await c.signIn(email, PASSWORD);
  return email;
}

/** An HTTP peer standing in for the API's auth behaviour, recording what the client sent. */
async function apiPeer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const server = http.createServer((req, res) => {
    // The client also dials the events socket here; this peer only plays the REST API.
    if (req.headers.upgrade) return void res.writeHead(404).end();
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('cloud client against cognito-local', () => {
  it('signs up, confirms with the emailed code, signs in and keeps the refresh token in the secret store', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-secrets-'));
    const store = new FileSecretStore(path.join(dir, 'secrets'));
    const c = client('http://127.0.0.1:9', store);
    const email = freshEmail();
    expect(await c.signUp(email, PASSWORD)).toEqual({ needsConfirmation: true });
    expect(c.state().pendingConfirmation).toBe(email);
    await expect(c.signIn(email, PASSWORD)).rejects.toMatchObject({ code: 'AUTH_NOT_CONFIRMED' });
    await expect(c.confirm(email, '000000x')).rejects.toMatchObject({ code: 'AUTH_CODE_INVALID' });
    await c.confirm(email, cognito.codeFor(email));
    await expect(c.signIn(email, 'Wrong-password1')).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    await c.signIn(email, PASSWORD);
    expect(c.state()).toMatchObject({ signedIn: true, email, pendingConfirmation: null, persisted: true });
    const saved = JSON.parse((await store.get('cloud-session'))!) as { refreshToken: string };
    expect(saved.refreshToken).toBe(c.tokens()!.refreshToken);
    expect(statSync(path.join(dir, 'secrets', 'cloud-session')).mode & 0o777).toBe(0o600);
    await expect(c.signUp(email, PASSWORD)).rejects.toMatchObject({ code: 'AUTH_USER_EXISTS' });

    // A second run restores the session from the store by refreshing.
    const again = client('http://127.0.0.1:9', store);
    expect(await again.restore()).toBe(true);
    expect(again.state()).toMatchObject({ signedIn: true, email });
    expect(again.tokens()!.accessToken.split('.')).toHaveLength(3);

    await again.signOut();
    expect(await store.get('cloud-session')).toBeNull();
    expect(await client('http://127.0.0.1:9', store).restore()).toBe(false);
  });

  it('refreshes and retries once when the API answers 401 AUTH_TOKEN_EXPIRED', async () => {
    const seen: string[] = [];
    const peer = await apiPeer((req, res) => {
      seen.push(req.headers.authorization ?? '');
      res.setHeader('content-type', 'application/json');
      if (seen.length === 1) {
        res.statusCode = 401;
        res.end(JSON.stringify({ error: { code: 'AUTH_TOKEN_EXPIRED', message: 'expired' } }));
        return;
      }
      res.end(
        JSON.stringify({
          id: 'u1',
          email: null,
          plan: 'free',
          usage: {
            used: 3,
            limit: 100,
            periodStart: '2026-11-01T00:00:00.000Z',
            periodEnd: '2026-12-01T00:00:00.000Z',
          },
        }),
      );
    });
    try {
      const c = client(peer.url);
      await signedUpUser(c);
      const before = c.tokens()!.accessToken;
      // Make the refresh observable: cognito-local issues the same token within one second.
      await new Promise((r) => setTimeout(r, 1100));
      const me = await c.api.me();
      expect(me.usage.used).toBe(3);
      expect(seen).toHaveLength(2);
      expect(seen[0]).toBe(`Bearer ${before}`);
      expect(seen[1]).toBe(`Bearer ${c.tokens()!.accessToken}`);
      expect(c.tokens()!.accessToken).not.toBe(before);
    } finally {
      peer.server.close();
    }
  });

  it('does not retry other 401s and surfaces API error codes', async () => {
    let calls = 0;
    const peer = await apiPeer((_req, res) => {
      calls++;
      res.statusCode = calls === 1 ? 401 : 429;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ error: { code: calls === 1 ? 'AUTH_INVALID_TOKEN' : 'QUOTA_EXCEEDED', message: 'no' } }),
      );
    });
    try {
      const c = client(peer.url);
      await signedUpUser(c);
      await expect(c.api.me()).rejects.toMatchObject({ code: 'AUTH_INVALID_TOKEN' });
      expect(calls).toBe(1);
      await expect(c.api.createGeneration({ prompt: 'x' } as never, 'key-1')).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
      });
    } finally {
      peer.server.close();
    }
  });

  it('retries reads and idempotent writes through a restarting API, and never a write without a key', async () => {
    const ME = {
      id: 'u1',
      email: null,
      plan: 'free',
      usage: { used: 0, limit: 100, periodStart: '2026-11-01T00:00:00.000Z', periodEnd: '2026-12-01T00:00:00.000Z' },
    };
    const seen: { method: string; url: string; key: string | undefined }[] = [];
    // Per path: how many more requests fail, and how (a cut connection, a 503 from a closing
    // replica, a 502 page from a proxy in front of the API).
    const failures = new Map<string, ('cut' | '503' | '502')[]>([
      ['GET /v1/me', ['cut', '503', '502']],
      ['POST /v1/generations', ['cut']],
      ['POST /v1/generations/gen_x/cancel', ['503']],
    ]);
    const peer = await apiPeer((req, res) => {
      const key = `${req.method} ${req.url}`;
      seen.push({ method: req.method!, url: req.url!, key: req.headers['idempotency-key'] as string | undefined });
      const how = failures.get(key)?.shift();
      if (how === 'cut') return void req.socket.destroy();
      if (how === '503') {
        res.writeHead(503, { 'content-type': 'application/json', connection: 'close' });
        return void res.end(JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: 'closing' }));
      }
      if (how === '502') return void res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad gateway</h1>');
      res.setHeader('content-type', 'application/json');
      if (key === 'GET /v1/me') return void res.end(JSON.stringify(ME));
      res.statusCode = 409;
      res.end(JSON.stringify({ error: { code: 'GENERATION_NOT_CANCELABLE', message: 'done already' } }));
    });
    try {
      const c = client(peer.url);
      await signedUpUser(c);
      const retries: string[] = [];
      let wentOffline = false;
      c.events.on('retry', (r) => retries.push(`${r.method} ${r.path} #${r.attempt} ${r.code}`));
      c.events.on('offline', () => (wentOffline = true));

      expect((await c.api.me()).plan).toBe('free');
      expect(retries).toEqual([
        'GET /v1/me #1 OFFLINE',
        'GET /v1/me #2 SERVICE_UNAVAILABLE',
        'GET /v1/me #3 SERVICE_UNAVAILABLE',
      ]);
      // A replica restarting is not the network gone: the app never flipped to offline.
      expect(wentOffline).toBe(false);

      // A write with an Idempotency-Key is sent again with the same key; the answer's own error
      // code (not a transient one) reaches the caller after that.
      retries.length = 0;
      seen.length = 0;
      await expect(c.api.createGeneration({ prompt: 'x' } as never, 'key-7')).rejects.toMatchObject({
        code: 'GENERATION_NOT_CANCELABLE',
      });
      expect(seen.map((s) => s.key)).toEqual(['key-7', 'key-7']);
      expect(retries).toEqual(['POST /v1/generations #1 OFFLINE']);

      // A write without a key is never repeated: the 503 reaches the caller.
      seen.length = 0;
      await expect(c.api.cancelGeneration('gen_x')).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      expect(seen).toHaveLength(1);
    } finally {
      peer.server.close();
    }
  });

  it('gives up after the last attempt and only then reports offline', async () => {
    const peer = await apiPeer((req) => req.socket.destroy());
    try {
      const c = client(peer.url, new InMemorySecretStore(), { retry: { attempts: 3 } });
      await signedUpUser(c);
      let calls = 0;
      peer.server.on('request', (req: http.IncomingMessage) => {
        if (req.url?.startsWith('/v1/images')) calls++;
      });
      const retries: number[] = [];
      c.events.on('retry', (r) => retries.push(r.attempt));
      await expect(c.api.listImages({ limit: 5 })).rejects.toMatchObject({ code: 'OFFLINE' });
      expect(calls).toBe(3);
      expect(retries).toEqual([1, 2]);
      expect(c.state().online).toBe(false);
    } finally {
      peer.server.close();
    }
  });

  it('resets a forgotten password with the emailed code', async () => {
    const c = client('http://127.0.0.1:9');
    const email = await signedUpUser(c);
    await c.signOut();
    await c.forgotPassword(email);
    await expect(c.resetPassword(email, 'nope', 'New-password2')).rejects.toMatchObject({ code: 'AUTH_CODE_INVALID' });
    await c.resetPassword(email, cognito.codeFor(email), 'New-password2');
    await expect(c.signIn(email, PASSWORD)).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    await c.signIn(email, 'New-password2');
    expect(c.state().signedIn).toBe(true);
  });

  it('goes offline when the API is unreachable and back online when it returns', async () => {
    const peer = await apiPeer((_req, res) => res.end('ok'));
    const port = (peer.server.address() as AddressInfo).port;
    await new Promise((r) => peer.server.close(r));
    const c = client(peer.url);
    await signedUpUser(c);
    const offline = new Promise<void>((r) => c.events.once('offline', () => r()));
    await expect(c.api.me()).rejects.toMatchObject({ code: 'OFFLINE' });
    await offline;
    expect(c.state().online).toBe(false);
    const back = new Promise<void>((r) => c.events.once('online', () => r()));
    const revived = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => revived.listen(port, '127.0.0.1', r));
    try {
      await back;
      expect(c.state().online).toBe(true);
    } finally {
      revived.close();
    }
  });

  it('authenticates the events socket first and reconnects after the server drops it', async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server, path: '/v1/events' });
    const auths: string[] = [];
    wss.on('connection', (ws) => {
      ws.once('message', (data) => {
        const msg = JSON.parse(data.toString()) as { type: string; token: string };
        auths.push(msg.type === 'auth' ? msg.token : 'not-auth');
        ws.send(JSON.stringify({ type: 'ready', userId: 'u1' }));
        ws.send(JSON.stringify({ type: 'plan.changed', plan: 'pro' }));
        ws.send('not json');
        // The first connection is dropped by the server; the client must come back.
        if (auths.length === 1) setTimeout(() => ws.terminate(), 20);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const got: CloudEvent[] = [];
      const twoPlanEvents = new Promise<void>((resolve) =>
        c.events.on('event', (e) => {
          got.push(e);
          if (got.filter((g) => g.type === 'plan.changed').length === 2) resolve();
        }),
      );
      await signedUpUser(c); // connects the socket
      await twoPlanEvents;
      expect(auths).toHaveLength(2);
      expect(auths.every((t) => t === c.tokens()!.accessToken)).toBe(true);
      expect(got.map((g) => g.type)).toEqual(['ready', 'plan.changed', 'ready', 'plan.changed']);
      c.close();
    } finally {
      wss.close();
      server.close();
    }
  });

  it('on `resync` (the server may have missed events) re-reads state exactly as after `ready`', async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server, path: '/v1/events' });
    wss.on('connection', (ws) => {
      ws.once('message', () => {
        ws.send(JSON.stringify({ type: 'ready', userId: 'u1' }));
        ws.send(JSON.stringify({ type: 'resync' }));
        ws.send(JSON.stringify({ type: 'plan.changed', plan: 'pro' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const got: CloudEvent[] = [];
      const planChanged = new Promise<void>((resolve) =>
        c.events.on('event', (e) => {
          got.push(e);
          if (e.type === 'plan.changed') resolve();
        }),
      );
      await signedUpUser(c);
      await planChanged;
      expect(got).toEqual([
        { type: 'ready', userId: 'u1' },
        { type: 'ready', userId: 'u1' },
        { type: 'plan.changed', plan: 'pro' },
      ]);
      c.close();
    } finally {
      wss.close();
      server.close();
    }
  });
});

describe('backoffDelay', () => {
  it('doubles from the base with jitter in [half, full] and caps', () => {
    expect(backoffDelay(0, 500, 30_000, () => 0)).toBe(250);
    expect(backoffDelay(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, 30_000, () => 1)).toBe(4000);
    expect(backoffDelay(20, 500, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(20, 500, 30_000, () => 0)).toBe(15_000);
  });
});
