/** `.atelier/stack.json`: what the local stack is running, read by the desktop, tests and the admin CLI. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');
/** ATELIER_STACK_DIR moves the stack's files (tests run a stack without touching the developer's). */
export const STACK_DIR = process.env.ATELIER_STACK_DIR
  ? path.resolve(process.env.ATELIER_STACK_DIR)
  : path.join(REPO_ROOT, '.atelier');
export const STACK_FILE = path.join(STACK_DIR, 'stack.json');

export const StackFile = z
  .object({
    apiUrl: z.string().url(),
    cognito: z.object({
      endpoint: z.string().url(),
      region: z.string(),
      userPoolId: z.string(),
      clientId: z.string(),
      issuer: z.string().url(),
    }),
    databaseUrl: z.string(),
  })
  .passthrough();
export type StackFile = z.infer<typeof StackFile>;

export function readStackFile(file = STACK_FILE): StackFile | null {
  if (!existsSync(file)) return null;
  return StackFile.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** Writes atomically, keeping fields other services added (s3, worker, …). */
export function writeStackFile(value: StackFile, file = STACK_FILE): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

/**
 * The environment for a command run against the local stack: process.env, with DATABASE_URL and
 * COGNITO_* filled from .atelier/stack.json when they are not set.
 */
export function stackEnv(env: Record<string, string | undefined> = process.env): Record<string, string | undefined> {
  if (env.DATABASE_URL) return env;
  const stack = readStackFile();
  if (!stack) return env;
  return {
    ...env,
    DATABASE_URL: stack.databaseUrl,
    COGNITO_ENDPOINT: env.COGNITO_ENDPOINT ?? stack.cognito.endpoint,
    COGNITO_REGION: env.COGNITO_REGION ?? stack.cognito.region,
    COGNITO_USER_POOL_ID: env.COGNITO_USER_POOL_ID ?? stack.cognito.userPoolId,
    COGNITO_CLIENT_ID: env.COGNITO_CLIENT_ID ?? stack.cognito.clientId,
    COGNITO_ISSUER: env.COGNITO_ISSUER ?? stack.cognito.issuer,
  };
}
