export { cognitoCall, CognitoError } from '../auth/cognito-client.ts';

/**
 * cognito-local as a child process, plus the few Cognito calls the stack and tests need. Calls go
 * over Cognito's JSON protocol with fetch: cognito-local does not check SigV4, and the calls the
 * API itself makes in production (GetUser) are authorised by the access token alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cognitoCall } from '../auth/cognito-client.ts';

export interface RunningCognito {
  endpoint: string;
  port: number;
  /** cognito-local's process id (see children.ts). */
  pid: number;
  /** The issuer prefix cognito-local signs with: http://localhost:<port> (+ /<poolId>). */
  issuerDomain: string;
  stop(): Promise<void>;
}

export async function startCognitoLocal(opts: {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
  /** Every whole line cognito-local prints (its code deliveries among them; see mailbox.ts). */
  onLine?: (line: string) => void;
}): Promise<RunningCognito> {
  const cfgDir = path.join(opts.dataDir, '.cognito');
  mkdirSync(cfgDir, { recursive: true });
  const issuerDomain = `http://localhost:${opts.port}`;
  writeFileSync(
    path.join(cfgDir, 'config.json'),
    JSON.stringify({ TokenConfig: { IssuerDomain: issuerDomain } }, null, 2),
  );
  // Our launcher rather than cognito-local's bin: the bin's logger stalls on code deliveries.
  const bin = path.join(import.meta.dirname, 'cognito-local-main.ts');
  const child: ChildProcess = spawn(process.execPath, [bin], {
    cwd: opts.dataDir,
    env: { ...process.env, PORT: String(opts.port), HOST: '127.0.0.1', DEBUG: '', NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGTERM');
  process.on('exit', killOnExit);
  await new Promise<void>((resolve, reject) => {
    let tail = '';
    // Whole lines per stream: a chunk can end mid-line, and a code delivery spans several lines.
    const lines = () => {
      let partial = '';
      return (chunk: Buffer) => {
        const text = partial + chunk.toString('utf8');
        const parts = text.split('\n');
        partial = parts.pop()!;
        tail = (tail + chunk.toString('utf8')).slice(-4000);
        for (const line of parts) {
          if (line.trim()) opts.log?.(line);
          opts.onLine?.(line);
          if (line.includes('Cognito Local running on')) resolve();
        }
      };
    };
    child.stdout!.on('data', lines());
    child.stderr!.on('data', lines());
    child.once('exit', (code) => reject(new Error(`cognito-local exited (${code}) before it was ready:\n${tail}`)));
  });
  let stopped: Promise<void> | null = null;
  return {
    endpoint: `http://127.0.0.1:${opts.port}`,
    port: opts.port,
    pid: child.pid!,
    issuerDomain,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        process.off('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
      return stopped;
    },
  };
}

export const POOL_NAME = 'atelier';
export const CLIENT_NAME = 'atelier-desktop';

/** Finds or creates the user pool and the public app client (idempotent: reused on the next run). */
export async function ensureUserPool(endpoint: string): Promise<{ userPoolId: string; clientId: string }> {
  const pools = await cognitoCall<{ UserPools?: { Id: string; Name: string }[] }>(endpoint, 'ListUserPools', {
    MaxResults: 60,
  });
  let userPoolId = pools.UserPools?.find((p) => p.Name === POOL_NAME)?.Id;
  if (!userPoolId) {
    const created = await cognitoCall<{ UserPool: { Id: string } }>(endpoint, 'CreateUserPool', {
      PoolName: POOL_NAME,
      UsernameAttributes: ['email'],
      AutoVerifiedAttributes: ['email'],
      // Kept in step with common/src/password-policy.ts.
      Policies: {
        PasswordPolicy: {
          MinimumLength: 8,
          RequireUppercase: true,
          RequireLowercase: true,
          RequireNumbers: true,
          RequireSymbols: false,
        },
      },
    });
    userPoolId = created.UserPool.Id;
  }
  const clients = await cognitoCall<{ UserPoolClients?: { ClientId: string; ClientName: string }[] }>(
    endpoint,
    'ListUserPoolClients',
    {
      UserPoolId: userPoolId,
      MaxResults: 60,
    },
  );
  let clientId = clients.UserPoolClients?.find((c) => c.ClientName === CLIENT_NAME)?.ClientId;
  if (!clientId) {
    const created = await cognitoCall<{ UserPoolClient: { ClientId: string } }>(endpoint, 'CreateUserPoolClient', {
      UserPoolId: userPoolId,
      ClientName: CLIENT_NAME,
      GenerateSecret: false,
      ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
    });
    clientId = created.UserPoolClient.ClientId;
  }
  return { userPoolId, clientId };
}

export interface Tokens {
  accessToken: string;
  idToken: string;
  refreshToken: string;
}

/** Sign-up + AdminConfirmSignUp + USER_PASSWORD_AUTH: a ready account with its tokens. */
export async function signUpConfirmed(
  endpoint: string,
  pool: { userPoolId: string; clientId: string },
  email: string,
  password: string,
): Promise<Tokens & { sub: string }> {
  const up = await cognitoCall<{ UserSub: string }>(endpoint, 'SignUp', {
    ClientId: pool.clientId,
    Username: email,
    Password: password,
    UserAttributes: [{ Name: 'email', Value: email }],
  });
  await cognitoCall(endpoint, 'AdminConfirmSignUp', { UserPoolId: pool.userPoolId, Username: email });
  return { ...(await passwordAuth(endpoint, pool.clientId, email, password)), sub: up.UserSub };
}

export async function passwordAuth(
  endpoint: string,
  clientId: string,
  email: string,
  password: string,
): Promise<Tokens> {
  const r = await cognitoCall<{ AuthenticationResult: { AccessToken: string; IdToken: string; RefreshToken: string } }>(
    endpoint,
    'InitiateAuth',
    { ClientId: clientId, AuthFlow: 'USER_PASSWORD_AUTH', AuthParameters: { USERNAME: email, PASSWORD: password } },
  );
  return {
    accessToken: r.AuthenticationResult.AccessToken,
    idToken: r.AuthenticationResult.IdToken,
    refreshToken: r.AuthenticationResult.RefreshToken,
  };
}
