import { describe, expect, it } from 'vitest';
import type { TokenVerifier } from '../src/auth/verifier.ts';
import { startApi } from '../src/server.ts';
import { createTestDatabase, createTestUser } from './support/index.ts';

describe('server', () => {
  it('graceful shutdown finishes the request in flight, then refuses new connections', async () => {
    const db = await createTestDatabase();
    const user = await createTestUser();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    // A verifier that holds the request inside the app until we let it go.
    const verifier: TokenVerifier = {
      async verify() {
        entered();
        await gate;
        return { sub: user.sub, clientId: 'x', username: null, exp: Math.floor(Date.now() / 1000) + 60 };
      },
    };
    const api = await startApi(db.config, { logger: false, port: 0, extend: { verifier } });
    const inflight = fetch(`${api.url}/v1/me`, { headers: { authorization: `Bearer ${user.accessToken}` } });
    await inside;
    const closed = api.close();
    let closedEarly = false;
    void closed.then(() => (closedEarly = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(closedEarly).toBe(false);
    release();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(user.sub);
    await closed;
    await expect(fetch(`${api.url}/healthz`)).rejects.toThrow();
  });
});
