/**
 * Cognito access-token verification: RS256 only, signature against the issuer's JWKS (cached by
 * jose; an unknown `kid` triggers one refetch, rate-limited), then `iss`, `exp`, `token_use =
 * access` and `client_id`. ID tokens (token_use=id, aud instead of client_id) are refused: only
 * access tokens authorise API calls.
 *
 * Verified tokens are cached so a busy client does not pay one RSA verification per request: the
 * key is a SHA-256 of the whole token string (signature included, so an altered or forged token
 * never matches an entry), the value is the checked claims, kept until min(exp, verified + ttl) —
 * the ttl (5 min) is below the JWKS cache age, so a key withdrawn from the JWKS stops being
 * accepted no later than without this cache. Only successes are cached; the cache is a bounded LRU.
 */
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { AppError } from '@atelier/common';

export interface VerifiedToken {
  /** The Cognito sub: our user id. */
  sub: string;
  clientId: string;
  username: string | null;
  /** Unit: seconds since the epoch. */
  exp: number;
}

export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken>;
}

export interface VerifierOptions {
  issuer: string;
  clientId: string;
  jwksUrl?: string;
  /** Injected key source for tests (e.g. jose's createLocalJWKSet). */
  keys?: JWTVerifyGetKey;
  /** Seconds of clock skew tolerated on exp/iat. */
  clockToleranceSeconds?: number;
  /** Verified tokens kept (LRU). Default 10 000. */
  cacheSize?: number;
  /** Longest a verified token is served from the cache before being verified again. Default 5 min. */
  cacheTtlMs?: number;
  now?: () => number;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function createTokenVerifier(opts: VerifierOptions): TokenVerifier {
  const keys =
    opts.keys ??
    createRemoteJWKSet(new URL(opts.jwksUrl ?? `${opts.issuer}/.well-known/jwks.json`), {
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
      timeoutDuration: 5_000,
    });
  // Map iteration order is insertion order: re-inserting on a hit makes the first key the least recently used.
  const cache = new Map<string, { token: VerifiedToken; until: number }>();
  const max = opts.cacheSize ?? 10_000;
  const ttl = opts.cacheTtlMs ?? 5 * 60_000;
  const now = opts.now ?? (() => Date.now());
  const tolerance = opts.clockToleranceSeconds ?? 5;

  return {
    async verify(token) {
      if (!JWT_SHAPE.test(token) || token.length > 8192) throw new AppError('AUTH_INVALID_TOKEN', 'Malformed token');
      const key = createHash('sha256').update(token).digest('base64url');
      const hit = cache.get(key);
      if (hit) {
        cache.delete(key);
        const t = now();
        if (t < hit.until) {
          cache.set(key, hit);
          return hit.token;
        }
        if (hit.token.exp * 1000 <= t) throw new AppError('AUTH_TOKEN_EXPIRED', 'Token expired');
        // ttl over, token still valid: verify it again in full below.
      }
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer: opts.issuer,
          algorithms: ['RS256'],
          clockTolerance: tolerance,
          currentDate: new Date(now()),
          requiredClaims: ['exp', 'sub'],
        }));
      } catch (e) {
        if (e instanceof errors.JWTExpired) throw new AppError('AUTH_TOKEN_EXPIRED', 'Token expired');
        throw new AppError('AUTH_INVALID_TOKEN', `Token rejected: ${(e as Error).message}`);
      }
      if (payload.token_use !== 'access') throw new AppError('AUTH_INVALID_TOKEN', 'Not an access token');
      if (payload.client_id !== opts.clientId)
        throw new AppError('AUTH_INVALID_TOKEN', 'Token issued to another client');
      if (typeof payload.sub !== 'string' || !payload.sub)
        throw new AppError('AUTH_INVALID_TOKEN', 'Token has no subject');
      const verified: VerifiedToken = {
        sub: payload.sub,
        clientId: payload.client_id,
        username: typeof payload.username === 'string' ? payload.username : null,
        exp: payload.exp as number,
      };
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
      cache.set(key, { token: verified, until: Math.min(verified.exp * 1000, now() + ttl) });
      return verified;
    },
  };
}

/** The token from `Authorization: Bearer …`; AUTH_REQUIRED when absent. */
export function bearerToken(header: string | undefined): string {
  if (!header) throw new AppError('AUTH_REQUIRED', 'No Authorization header');
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!m) throw new AppError('AUTH_INVALID_TOKEN', 'Authorization must be "Bearer <token>"');
  return m[1]!;
}
