/**
 * Cognito access-token verification: RS256 only, signature against the issuer's JWKS (cached by
 * jose; an unknown `kid` triggers one refetch, rate-limited), then `iss`, `exp`, `token_use =
 * access` and `client_id`. ID tokens (token_use=id, aud instead of client_id) are refused: only
 * access tokens authorise API calls. Verified tokens are cached until their expiry so a busy
 * client does not pay one RSA verification per request.
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
  cacheSize?: number;
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
  const cache = new Map<string, VerifiedToken>();
  const max = opts.cacheSize ?? 10_000;
  const now = opts.now ?? (() => Date.now());
  const tolerance = opts.clockToleranceSeconds ?? 5;

  return {
    async verify(token) {
      if (!JWT_SHAPE.test(token) || token.length > 8192) throw new AppError('AUTH_INVALID_TOKEN', 'Malformed token');
      const key = createHash('sha256').update(token).digest('base64url');
      const hit = cache.get(key);
      if (hit) {
        if (hit.exp * 1000 > now()) return hit;
        cache.delete(key);
        throw new AppError('AUTH_TOKEN_EXPIRED', 'Token expired');
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
      cache.set(key, verified);
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
