/**
 * Cognito sign-up / confirm / sign-in / refresh / forgot-password through
 * amazon-cognito-identity-js. The pool may point at cognito-local (`endpoint`), which has no SRP,
 * so sign-in uses USER_PASSWORD_AUTH. Cognito's error names become our stable codes.
 */
import {
  AuthenticationDetails,
  CognitoRefreshToken,
  CognitoUser,
  CognitoUserAttribute,
  CognitoUserPool,
  type CognitoUserSession,
  type ICognitoStorage,
} from 'amazon-cognito-identity-js';
import { AppError } from '@atelier/common';

export interface CognitoConfig {
  /** Cognito endpoint; cognito-local's URL locally, absent for AWS. */
  endpoint?: string;
  region: string;
  userPoolId: string;
  clientId: string;
}

export interface Tokens {
  username: string;
  accessToken: string;
  idToken: string;
  refreshToken: string;
  /** Unit: seconds since the epoch, from the access token. */
  expiresAt: number;
}

/** The library caches tokens in a Storage; keep them in memory only (we persist via SecretStore). */
class MemoryStorage implements ICognitoStorage {
  private readonly m = new Map<string, string>();
  setItem(key: string, value: string): void {
    this.m.set(key, value);
  }
  getItem(key: string): string | null {
    return this.m.get(key) ?? null;
  }
  removeItem(key: string): void {
    this.m.delete(key);
  }
  clear(): void {
    this.m.clear();
  }
}

const COGNITO_CODES: Record<string, AppError['code']> = {
  UsernameExistsException: 'AUTH_USER_EXISTS',
  NotAuthorizedException: 'AUTH_FAILED',
  UserNotFoundException: 'AUTH_FAILED',
  UserNotConfirmedException: 'AUTH_NOT_CONFIRMED',
  InvalidPasswordException: 'AUTH_WEAK_PASSWORD',
  CodeMismatchException: 'AUTH_CODE_INVALID',
  ExpiredCodeException: 'AUTH_CODE_INVALID',
  LimitExceededException: 'RATE_LIMITED',
  TooManyRequestsException: 'RATE_LIMITED',
  TooManyFailedAttemptsException: 'RATE_LIMITED',
  InvalidParameterException: 'VALIDATION_FAILED',
};

export function cognitoError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { code?: string; name?: string; message?: string };
  const name = e?.code ?? e?.name ?? '';
  const code = COGNITO_CODES[name];
  if (code) return new AppError(code, `${name}: ${e.message ?? ''}`, { cause: err });
  if (name === 'NetworkError' || /fetch failed|network|ECONNREFUSED/i.test(e?.message ?? ''))
    return new AppError('OFFLINE', `Cognito unreachable: ${e?.message}`, { cause: err });
  return new AppError('INTERNAL', `Cognito: ${name} ${e?.message ?? String(err)}`, { cause: err });
}

function jwtExp(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: number };
  return payload.exp ?? 0;
}

function toTokens(username: string, s: CognitoUserSession): Tokens {
  const accessToken = s.getAccessToken().getJwtToken();
  return {
    username,
    accessToken,
    idToken: s.getIdToken().getJwtToken(),
    refreshToken: s.getRefreshToken().getToken(),
    expiresAt: jwtExp(accessToken),
  };
}

export type CognitoAuth = ReturnType<typeof createCognitoAuth>;

export function createCognitoAuth(config: CognitoConfig) {
  const pool = new CognitoUserPool({
    UserPoolId: config.userPoolId,
    ClientId: config.clientId,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    Storage: new MemoryStorage(),
  });
  const user = (username: string) => {
    const u = new CognitoUser({ Username: username, Pool: pool, Storage: new MemoryStorage() });
    u.setAuthenticationFlowType('USER_PASSWORD_AUTH');
    return u;
  };
  const call = <T>(fn: (cb: (err: unknown, value?: T) => void) => void) =>
    new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(cognitoError(err)) : resolve(value as T))));

  return {
    async signUp(email: string, password: string): Promise<{ needsConfirmation: boolean }> {
      const result = await call<{ userConfirmed: boolean }>((cb) =>
        pool.signUp(email, password, [new CognitoUserAttribute({ Name: 'email', Value: email })], [], (err, r) =>
          cb(err, r),
        ),
      );
      return { needsConfirmation: !result.userConfirmed };
    },
    async confirm(email: string, code: string): Promise<void> {
      await call((cb) => user(email).confirmRegistration(code, true, (err, r) => cb(err, r)));
    },
    async resendCode(email: string): Promise<void> {
      await call((cb) => user(email).resendConfirmationCode((err, r) => cb(err, r)));
    },
    async signIn(email: string, password: string): Promise<Tokens> {
      const u = user(email);
      const session = await new Promise<CognitoUserSession>((resolve, reject) =>
        u.authenticateUser(new AuthenticationDetails({ Username: email, Password: password }), {
          onSuccess: resolve,
          // cognito-local answers a wrong password with InvalidPasswordException; Cognito with NotAuthorized.
          onFailure: (err) => {
            const e = cognitoError(err);
            reject(e.code === 'AUTH_WEAK_PASSWORD' ? new AppError('AUTH_FAILED', e.message, { cause: err }) : e);
          },
          newPasswordRequired: () => reject(new AppError('AUTH_FAILED', 'a new password is required')),
        }),
      );
      return toTokens(email, session);
    },
    async refresh(username: string, refreshToken: string): Promise<Tokens> {
      const session = await call<CognitoUserSession>((cb) =>
        user(username).refreshSession(new CognitoRefreshToken({ RefreshToken: refreshToken }), (err, s) => cb(err, s)),
      );
      // Cognito does not rotate refresh tokens by default: keep the one we had when none comes back.
      const t = toTokens(username, session);
      return { ...t, refreshToken: t.refreshToken || refreshToken };
    },
    async forgotPassword(email: string): Promise<void> {
      await new Promise<void>((resolve, reject) =>
        user(email).forgotPassword({ onSuccess: () => resolve(), onFailure: (err) => reject(cognitoError(err)) }),
      );
    },
    async resetPassword(email: string, code: string, password: string): Promise<void> {
      await new Promise<void>((resolve, reject) =>
        user(email).confirmPassword(code, password, {
          onSuccess: () => resolve(),
          onFailure: (err) => reject(cognitoError(err)),
        }),
      );
    },
  };
}
