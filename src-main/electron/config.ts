/**
 * The Electron shell's configuration, parsed once at startup. The cloud comes from
 * ATELIER_API_URL + COGNITO_* (a packaged build bakes these into its environment file), or in a
 * development checkout from the local stack's .atelier/stack.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { CloudConfig } from '../services/cloud-client.ts';

const Env = z.object({
  ATELIER_API_URL: z.string().url().optional(),
  COGNITO_ENDPOINT: z.string().url().optional(),
  COGNITO_REGION: z.string().min(1).optional(),
  COGNITO_USER_POOL_ID: z.string().min(1).optional(),
  COGNITO_CLIENT_ID: z.string().min(1).optional(),
  ATELIER_S3_ORIGIN: z.string().url().optional(),
});

const StackFile = z.object({
  apiUrl: z.string().url(),
  cognito: z.object({ endpoint: z.string().url(), region: z.string(), userPoolId: z.string(), clientId: z.string() }),
  s3: z.object({ endpoint: z.string().url() }).loose().optional(),
  mailbox: z.object({ url: z.string().url() }).loose().optional(),
});

export interface ShellConfig {
  cloud: CloudConfig | null;
  imageOrigins: string[];
  /** Development stack only: its mailbox page, where sign-up and reset codes arrive. */
  mailboxUrl: string | null;
}

export function loadShellConfig(
  repoRoot: string,
  isPackaged: boolean,
  env: NodeJS.ProcessEnv = process.env,
): ShellConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new Error(`invalid ${i.path.join('.')}: ${i.message}`);
  }
  const e = parsed.data;
  if (e.ATELIER_API_URL) {
    if (!e.COGNITO_REGION || !e.COGNITO_USER_POOL_ID || !e.COGNITO_CLIENT_ID)
      throw new Error('ATELIER_API_URL needs COGNITO_REGION, COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID');
    return {
      cloud: {
        apiUrl: e.ATELIER_API_URL,
        cognito: {
          region: e.COGNITO_REGION,
          userPoolId: e.COGNITO_USER_POOL_ID,
          clientId: e.COGNITO_CLIENT_ID,
          ...(e.COGNITO_ENDPOINT ? { endpoint: e.COGNITO_ENDPOINT } : {}),
        },
      },
      imageOrigins: e.ATELIER_S3_ORIGIN ? [e.ATELIER_S3_ORIGIN] : [],
      mailboxUrl: null,
    };
  }
  const stackFile = path.join(repoRoot, '.atelier/stack.json');
  if (!isPackaged && existsSync(stackFile)) {
    const stack = StackFile.parse(JSON.parse(readFileSync(stackFile, 'utf8')));
    return {
      cloud: { apiUrl: stack.apiUrl, cognito: stack.cognito },
      imageOrigins: stack.s3 ? [stack.s3.endpoint] : [],
      mailboxUrl: stack.mailbox?.url ?? null,
    };
  }
  return { cloud: null, imageOrigins: [], mailboxUrl: null };
}
