import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWTVerifyGetKey } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier } from './verifier.ts';

const ISSUER = 'https://issuer.test/pool';
const CLIENT = 'client-1';
const T0 = Date.UTC(2026, 0, 1) / 1000; // seconds

let sign: (claims: Record<string, unknown>, exp: number) => Promise<string>;
let jwks: JWTVerifyGetKey;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }] });
  sign = (claims, exp) =>
    new SignJWT({ token_use: 'access', client_id: CLIENT, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setIssuedAt(T0)
      .setExpirationTime(exp)
      .sign(privateKey);
});

/** A verifier on a settable clock whose key source counts full verifications. */
function setup(opts: { cacheSize?: number; cacheTtlMs?: number } = {}) {
  const clock = { ms: T0 * 1000 };
  const state = { keyLookups: 0, keys: jwks };
  const keys: JWTVerifyGetKey = (header, token) => {
    state.keyLookups++;
    return state.keys(header, token);
  };
  const verifier = createTokenVerifier({
    issuer: ISSUER,
    clientId: CLIENT,
    keys,
    clockToleranceSeconds: 0,
    now: () => clock.ms,
    ...opts,
  });
  return { clock, state, verifier };
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: { code?: string }) => e.code,
  );

describe('token verifier cache', () => {
  it('serves a verified token from the cache, but rejects it once its exp passes while cached', async () => {
    const { clock, state, verifier } = setup();
    const token = await sign({ sub: 'u1' }, T0 + 60);
    expect((await verifier.verify(token)).sub).toBe('u1');
    expect((await verifier.verify(token)).sub).toBe('u1');
    expect(state.keyLookups).toBe(1);
    clock.ms = (T0 + 60) * 1000;
    expect(await code(verifier.verify(token))).toBe('AUTH_TOKEN_EXPIRED');
    expect(await code(verifier.verify(token))).toBe('AUTH_TOKEN_EXPIRED');
  });

  it('keeps rejecting an expired token (failures are never cached as successes)', async () => {
    const { state, verifier } = setup();
    const token = await sign({ sub: 'u1' }, T0 - 1);
    expect(await code(verifier.verify(token))).toBe('AUTH_TOKEN_EXPIRED');
    expect(await code(verifier.verify(token))).toBe('AUTH_TOKEN_EXPIRED');
    expect(state.keyLookups).toBe(2);
  });

  it('does not serve a token with an altered signature or payload from the cache', async () => {
    const { verifier } = setup();
    const token = await sign({ sub: 'u1' }, T0 + 3600);
    await verifier.verify(token);
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = `${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`;
    expect(await code(verifier.verify(`${h}.${p}.${flipped}`))).toBe('AUTH_INVALID_TOKEN');
    const otherSub = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'u2' }),
    ).toString('base64url');
    expect(await code(verifier.verify(`${h}.${otherSub}.${s}`))).toBe('AUTH_INVALID_TOKEN');
    expect((await verifier.verify(token)).sub).toBe('u1');
  });

  it('verifies again after the ttl: a key withdrawn from the JWKS stops being accepted', async () => {
    const { clock, state, verifier } = setup({ cacheTtlMs: 60_000 });
    const token = await sign({ sub: 'u1' }, T0 + 3600);
    await verifier.verify(token);
    clock.ms += 59_000;
    await verifier.verify(token);
    expect(state.keyLookups).toBe(1);
    clock.ms += 2_000;
    state.keys = createLocalJWKSet({ keys: [] });
    expect(await code(verifier.verify(token))).toBe('AUTH_INVALID_TOKEN');
  });

  it('is a bounded LRU', async () => {
    const { state, verifier } = setup({ cacheSize: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => sign({ sub }, T0 + 3600)));
    await verifier.verify(a!);
    await verifier.verify(b!);
    await verifier.verify(a!); // a is now the most recently used
    await verifier.verify(c!); // evicts b
    expect(state.keyLookups).toBe(3);
    await verifier.verify(a!);
    expect(state.keyLookups).toBe(3);
    await verifier.verify(b!);
    expect(state.keyLookups).toBe(4);
  });
});
