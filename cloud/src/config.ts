/**
 * The cloud's configuration: parsed once at boot from the environment with zod. This is the only
 * module of cloud/src that reads `process.env` (the stack and scripts pass values in explicitly).
 *
 * Extension points for the other cloud areas: add your fields to `EnvSchema` (S3_*, STRIPE_*,
 * MODEL_CATALOGUE, …) and map them into `Config` in `toConfig`, in a section of your own below.
 */
import { z } from 'zod';
import { LIMITS_ENV, toLimitsConfig, type LimitsConfig } from './api/limits.ts';
import { BILLING_ENV, toBillingConfig, type BillingConfig } from './billing/billing-config.ts';
import { GEN_ENV, toGenConfig, type GenConfig } from './worker/gen-config.ts';
import { WEBHOOKS_ENV, toWebhooksConfig, type WebhooksConfig } from './webhooks/webhooks-config.ts';

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

export const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  /** `production` here (or NODE_ENV=production) turns on the production checks. */
  ATELIER_ENV: z.enum(['development', 'test', 'production']).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  /** The migrator / administrator connection: owns nothing at runtime, runs migrations and the admin CLI. */
  DATABASE_URL: z.string().url().default('postgres://postgres:postgres@127.0.0.1:5432/atelier'),
  /** The API's connection (role atelier_app). Default: DATABASE_URL with that role's user and password. */
  DATABASE_APP_URL: z.string().url().optional(),
  /** The worker's and webhooks' connection (role atelier_system, BYPASSRLS). Default: derived likewise. */
  DATABASE_SYSTEM_URL: z.string().url().optional(),
  /** Password the migrator gives the LOGIN roles when it creates them (local stack and tests). */
  ATELIER_DB_ROLE_PASSWORD: z.string().min(8).default('atelier-local-only'),
  DATABASE_POOL_MAX: int(10, 1),
  /** Unit: ms. Waiting for a pooled connection longer than this answers 503 SERVICE_UNAVAILABLE. */
  DATABASE_ACQUIRE_TIMEOUT_MS: int(5_000, 1),
  /** Unit: ms. The API's statements and row-lock waits are cancelled after these (503, retryable). */
  DATABASE_STATEMENT_TIMEOUT_MS: int(15_000, 1),
  DATABASE_LOCK_TIMEOUT_MS: int(5_000, 1),

  ATELIER_API_HOST: z.string().default('127.0.0.1'),
  ATELIER_API_PORT: int(8787),
  /**
   * A page a person can open (GET, no sign-in) about upgrading, sent as `upgradeUrl` in
   * QUOTA_EXCEEDED and PLAN_REQUIRED. Default: <PUBLIC_API_URL>/v1/billing/upgrade.
   */
  ATELIER_UPGRADE_URL: z.string().url().optional(),
  ATELIER_DEFAULT_MODEL: z.string().default('sd-turbo'),

  COGNITO_REGION: z.string().default('local'),
  COGNITO_ENDPOINT: z.string().url().default('http://127.0.0.1:9229'),
  COGNITO_USER_POOL_ID: z.string().default('local_atelier'),
  COGNITO_CLIENT_ID: z.string().default('atelier-desktop'),
  /** Default: http://localhost:9229/<pool> for region `local`, else https://cognito-idp.<region>.amazonaws.com/<pool>. */
  COGNITO_ISSUER: z.string().url().optional(),
  /** Default: <issuer>/.well-known/jwks.json (<endpoint>/<pool>/… for region `local`). */
  COGNITO_JWKS_URL: z.string().url().optional(),
  /** How often a user's email is re-read from Cognito (only verified emails are stored). */
  EMAIL_REFRESH_SECONDS: int(3600, 0),

  // ── limits (rate, in-flight, sockets, body size, proxy hops): see api/limits.ts ──
  ...LIMITS_ENV,
  /** Comma-separated allowed origins; empty means CORS stays closed. */
  CORS_ORIGINS: z.string().default(''),

  /** Queue: a job whose worker stops heart-beating this long is failed and retried (pg-boss minimum 10). */
  QUEUE_HEARTBEAT_SECONDS: int(10, 10),
  /** How often the supervisor looks for dead workers' jobs. */
  QUEUE_SUPERVISE_SECONDS: int(10, 1),
  QUEUE_RETRY_LIMIT: int(2, 0),
  QUEUE_EXPIRE_SECONDS: int(900, 1),
  SHUTDOWN_GRACE_SECONDS: int(10, 1),

  // ── periodic work, once per cluster (pg-boss schedules; periodic/periodic-work.ts) ──
  /** off: this process runs no periodic task (other replicas do). */
  PERIODIC_WORK: z.enum(['on', 'off']).default('on'),
  /** When the billing review sweep runs (cron, UTC; at most once a minute). */
  BILLING_REVIEW_CRON: z.string().min(9).default('* * * * *'),
  /** How often a replica tries to claim the cron pass (1–45 s). */
  PERIODIC_CRON_MONITOR_SECONDS: z.coerce.number().int().min(1).max(45).default(30),

  // ── error tracking (observability/error-tracking.ts) ──
  /** Sentry DSN: errors (5xx, crashes) are sent there with the user id, never prompts or tokens. Unset: off. */
  SENTRY_DSN: z.string().url().optional(),
  /** Sentry environment name. Default: ATELIER_ENV / NODE_ENV. */
  SENTRY_ENVIRONMENT: z.string().min(1).max(64).optional(),
  /** Release tag sent with errors (the image's version). */
  ATELIER_RELEASE: z.string().min(1).max(100).optional(),

  // ── cloud-gen (issue 5): S3_*, ATELIER_CLOUD_MODELS, ATELIER_MODELS_DIR, WORKER_*, … (see worker/gen-config.ts) ──
  ...GEN_ENV,
  // ── billing (issue 6): STRIPE_*, BILLING_GRACE_DAYS, PUBLIC_API_URL (see billing/billing-config.ts) ──
  ...BILLING_ENV,
  // ── webhooks (issue 16): WEBHOOKS_* (see webhooks/webhooks-config.ts) ──
  ...WEBHOOKS_ENV,
});
export type Env = z.input<typeof EnvSchema>;

export interface Config {
  env: 'development' | 'test' | 'production';
  production: boolean;
  logLevel: string;
  database: {
    /** Migrator / admin connection. */
    url: string;
    /** API connection: role atelier_app, RLS applies. */
    appUrl: string;
    /** Worker / webhook connection: role atelier_system, BYPASSRLS. */
    systemUrl: string;
    rolePassword: string;
    poolMax: number;
    /** Unit: ms. */
    acquireTimeoutMs: number;
    /** Unit: ms; applied to the API's (app role) connections. */
    statementTimeoutMs: number;
    /** Unit: ms; applied to the API's (app role) connections. */
    lockTimeoutMs: number;
  };
  api: { host: string; port: number; bodyLimit: number; corsOrigins: string[]; upgradeUrl: string };
  /** Every limit the API enforces (api/limits.ts). */
  limits: LimitsConfig;
  cognito: {
    region: string;
    endpoint: string;
    userPoolId: string;
    clientId: string;
    issuer: string;
    jwksUrl: string;
    /** Unit: seconds between re-reads of a user's (verified) email. */
    emailRefreshSeconds: number;
  };
  queue: { heartbeatSeconds: number; superviseSeconds: number; retryLimit: number; expireSeconds: number };
  defaultModel: string;
  shutdownGraceMs: number;
  periodic: { enabled: boolean; billingReviewCron: string; cronMonitorSeconds: number };
  observability: { sentryDsn: string | null; environment: string; release: string | null };
  billing: BillingConfig;
  /** S3, the model catalogue and the worker (worker/gen-config.ts). */
  gen: GenConfig;
  /** Outbound webhooks (webhooks/webhooks-config.ts). */
  webhooks: WebhooksConfig;
}

export const APP_ROLE = 'atelier_app';
export const SYSTEM_ROLE = 'atelier_system';

function withUser(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses an environment into a Config; throws ConfigError naming each bad variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const envName = e.ATELIER_ENV ?? e.NODE_ENV;
  const production = envName === 'production';
  const issuer =
    e.COGNITO_ISSUER ??
    (e.COGNITO_REGION === 'local'
      ? `http://localhost:${new URL(e.COGNITO_ENDPOINT).port || '9229'}/${e.COGNITO_USER_POOL_ID}`
      : `https://cognito-idp.${e.COGNITO_REGION}.amazonaws.com/${e.COGNITO_USER_POOL_ID}`);
  if (production) {
    const problems: string[] = [];
    if (!issuer.startsWith('https://')) problems.push('  COGNITO_ISSUER: production requires an https issuer');
    if (e.COGNITO_REGION === 'local' || e.COGNITO_USER_POOL_ID.startsWith('local_'))
      problems.push('  COGNITO_USER_POOL_ID: production refuses cognito-local pools (its signing key is public)');
    if (e.COGNITO_JWKS_URL && !e.COGNITO_JWKS_URL.startsWith('https://'))
      problems.push('  COGNITO_JWKS_URL: production requires https');
    if (problems.length) throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);
  }
  return {
    env: envName,
    production,
    logLevel: e.LOG_LEVEL,
    database: {
      url: e.DATABASE_URL,
      appUrl: e.DATABASE_APP_URL ?? withUser(e.DATABASE_URL, APP_ROLE, e.ATELIER_DB_ROLE_PASSWORD),
      systemUrl: e.DATABASE_SYSTEM_URL ?? withUser(e.DATABASE_URL, SYSTEM_ROLE, e.ATELIER_DB_ROLE_PASSWORD),
      rolePassword: e.ATELIER_DB_ROLE_PASSWORD,
      poolMax: e.DATABASE_POOL_MAX,
      acquireTimeoutMs: e.DATABASE_ACQUIRE_TIMEOUT_MS,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      lockTimeoutMs: e.DATABASE_LOCK_TIMEOUT_MS,
    },
    api: {
      host: e.ATELIER_API_HOST,
      port: e.ATELIER_API_PORT,
      bodyLimit: e.BODY_LIMIT_BYTES,
      corsOrigins: e.CORS_ORIGINS.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      upgradeUrl:
        e.ATELIER_UPGRADE_URL ??
        `${(e.PUBLIC_API_URL ?? `http://${e.ATELIER_API_HOST}:${e.ATELIER_API_PORT}`).replace(/\/+$/, '')}/v1/billing/upgrade`,
    },
    cognito: {
      region: e.COGNITO_REGION,
      endpoint: e.COGNITO_ENDPOINT,
      userPoolId: e.COGNITO_USER_POOL_ID,
      clientId: e.COGNITO_CLIENT_ID,
      issuer,
      // cognito-local signs as http://localhost:<port> but listens where COGNITO_ENDPOINT says.
      jwksUrl:
        e.COGNITO_JWKS_URL ??
        (e.COGNITO_REGION === 'local'
          ? `${e.COGNITO_ENDPOINT.replace(/\/$/, '')}/${e.COGNITO_USER_POOL_ID}/.well-known/jwks.json`
          : `${issuer}/.well-known/jwks.json`),
      emailRefreshSeconds: e.EMAIL_REFRESH_SECONDS,
    },
    limits: toLimitsConfig(e, { production }),
    queue: {
      heartbeatSeconds: e.QUEUE_HEARTBEAT_SECONDS,
      superviseSeconds: e.QUEUE_SUPERVISE_SECONDS,
      retryLimit: e.QUEUE_RETRY_LIMIT,
      expireSeconds: e.QUEUE_EXPIRE_SECONDS,
    },
    defaultModel: e.ATELIER_DEFAULT_MODEL,
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    periodic: {
      enabled: e.PERIODIC_WORK === 'on',
      billingReviewCron: e.BILLING_REVIEW_CRON,
      cronMonitorSeconds: e.PERIODIC_CRON_MONITOR_SECONDS,
    },
    observability: {
      sentryDsn: e.SENTRY_DSN ?? null,
      environment: e.SENTRY_ENVIRONMENT ?? envName,
      release: e.ATELIER_RELEASE ?? null,
    },
    billing: toBillingConfig(e, { production, apiHost: e.ATELIER_API_HOST, apiPort: e.ATELIER_API_PORT }, (m) => {
      throw new ConfigError(m);
    }),
    gen: toGenConfig(e, { production }, (m) => {
      throw new ConfigError(m);
    }),
    webhooks: toWebhooksConfig(e, { production }, (m) => {
      throw new ConfigError(m);
    }),
  };
}

/** For process entry points: parse, or print the problem naming the variable and exit 1. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  try {
    return parseConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
}

/** Values from the environment that are not part of Config but that launchers pass on. */
export function environment(): Record<string, string | undefined> {
  return process.env;
}
