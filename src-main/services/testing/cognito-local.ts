/**
 * A real cognito-local for the cloud client's tests: a child process in a temp folder on a random
 * port, a user pool with the product's password policy and a public client. cognito-local
 * "delivers" codes by logging them and keeps them in its pool file, which `codeFor` reads — the
 * same code a user would get by email.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

export interface TestCognito {
  endpoint: string;
  userPoolId: string;
  clientId: string;
  /** The confirmation / reset code cognito-local last issued to this email. */
  codeFor(email: string): string;
  call<T = Record<string, unknown>>(action: string, body: Record<string, unknown>): Promise<T>;
  stop(): Promise<void>;
}

export async function startTestCognito(): Promise<TestCognito> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-cognito-'));
  const bin = path.join(path.dirname(require.resolve('cognito-local/package.json')), 'lib/bin/start.js');
  // A random free port on loopback, set in cognito-local's own config file.
  mkdirSync(path.join(dir, '.cognito'));
  writeFileSync(
    path.join(dir, '.cognito/config.json'),
    JSON.stringify({ ServerConfig: { port: 0, hostname: '127.0.0.1' } }),
  );
  const child = spawn(process.execPath, [bin], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /running on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(`${m[1]}/`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`cognito-local exited ${code}: ${out}`)));
  });
  child.stdout.resume();
  child.stderr.resume();
  async function call<T>(action: string, body: Record<string, unknown>): Promise<T> {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `AWSCognitoIdentityProviderService.${action}`,
      },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`${action}: ${JSON.stringify(json)}`);
    return json;
  }
  const pool = await call<{ UserPool: { Id: string } }>('CreateUserPool', {
    PoolName: 'atelier-test',
    UsernameAttributes: ['email'],
    AutoVerifiedAttributes: ['email'],
    Policies: {
      PasswordPolicy: { MinimumLength: 8, RequireUppercase: true, RequireLowercase: true, RequireNumbers: true },
    },
  });
  const client = await call<{ UserPoolClient: { ClientId: string } }>('CreateUserPoolClient', {
    UserPoolId: pool.UserPool.Id,
    ClientName: 'desktop-test',
    ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
  });
  const userPoolId = pool.UserPool.Id;
  return {
    endpoint,
    userPoolId,
    clientId: client.UserPoolClient.ClientId,
    call,
    codeFor(email: string): string {
      const db = JSON.parse(readFileSync(path.join(dir, '.cognito/db', `${userPoolId}.json`), 'utf8')) as {
        Users: Record<string, { Attributes: { Name: string; Value: string }[]; ConfirmationCode?: string }>;
      };
      const user = Object.values(db.Users).find((u) =>
        u.Attributes.some((a) => a.Name === 'email' && a.Value === email),
      );
      if (!user?.ConfirmationCode) throw new Error(`no code issued to ${email}`);
      return user.ConfirmationCode;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
