/**
 * The environment each container gets. Every name here is a variable of cloud/src/config.ts's
 * EnvSchema (the synth test checks it), and everything secret arrives as an ECS secret from
 * Secrets Manager, never as a plain value in the task definition.
 */
import type { ServiceSettings as Settings } from './settings.ts';

/** Where the image keeps the RDS CA bundle (Dockerfile.api / Dockerfile.worker). */
export const RDS_CA_BUNDLE = '/etc/ssl/certs/rds-global-bundle.pem';
/** Where the worker container sees the host's model folders. */
export const CONTAINER_MODELS_DIR = '/models';
export const API_PORT = 8787;
/** Not Redis's default port (cdk-nag AwsSolutions-AEC5). */
export const REDIS_PORT = 6380;
export const DB_NAME = 'atelier';
export const DB_ADMIN_USER = 'atelier_admin';

export interface Endpoints {
  region: string;
  dbHost: string;
  dbPort: string;
  bucketName: string;
  userPoolId: string;
  userPoolClientId: string;
}

/** TLS with the server certificate verified against the RDS CA (pg's `verify-full`). */
export const DB_TLS_PARAMS = `sslmode=verify-full&sslrootcert=${RDS_CA_BUNDLE}`;

/**
 * DATABASE_URL without a password: the API and the worker never log in as the administrator —
 * config.ts derives their URLs (roles atelier_app / atelier_system) from it with
 * ATELIER_DB_ROLE_PASSWORD. Only the migrator gets the administrator's URL, as a secret.
 */
export function passwordlessDatabaseUrl(e: Endpoints): string {
  return `postgres://${DB_ADMIN_USER}@${e.dbHost}:${e.dbPort}/${DB_NAME}?${DB_TLS_PARAMS}`;
}

function common(s: Settings, e: Endpoints): Record<string, string> {
  return {
    NODE_ENV: 'production',
    ATELIER_ENV: 'production',
    LOG_LEVEL: 'info',
    DATABASE_URL: passwordlessDatabaseUrl(e),
    COGNITO_REGION: e.region,
    COGNITO_ENDPOINT: `https://cognito-idp.${e.region}.amazonaws.com`,
    COGNITO_USER_POOL_ID: e.userPoolId,
    COGNITO_CLIENT_ID: e.userPoolClientId,
    ...(s.cloudModels ? { ATELIER_CLOUD_MODELS: s.cloudModels } : {}),
  };
}

function storage(e: Endpoints): Record<string, string> {
  return { S3_REGION: e.region, S3_BUCKET: e.bucketName };
}

export function apiEnvironment(s: Settings, e: Endpoints): Record<string, string> {
  const publicUrl = `https://${s.domainName}`;
  return {
    ...common(s, e),
    ...storage(e),
    ATELIER_API_HOST: '0.0.0.0',
    ATELIER_API_PORT: String(API_PORT),
    PUBLIC_API_URL: publicUrl,
    CORS_ORIGINS: s.corsOrigins,
    DATABASE_POOL_MAX: '10',
    // Under the ALB's deregistration delay (30 s), so in-flight requests finish before the target goes.
    SHUTDOWN_GRACE_SECONDS: '25',
    // The janitor runs on the workers; an API replica never deletes objects on a timer.
    JANITOR_INTERVAL_SECONDS: '0',
    ...(s.stripePricePro ? { STRIPE_PRICE_PRO: s.stripePricePro } : {}),
  };
}

export function workerEnvironment(s: Settings, e: Endpoints): Record<string, string> {
  return {
    ...common(s, e),
    ...storage(e),
    ATELIER_MODELS_DIR: CONTAINER_MODELS_DIR,
    WORKER_CONCURRENCY: String(s.workerConcurrency),
    DATABASE_POOL_MAX: '6',
    // A generation may take a while on a cold model; ECS's stop timeout (120 s) is above this.
    SHUTDOWN_GRACE_SECONDS: '100',
  };
}

/** The one-off migrator (an init container of the API task): config.ts needs only Cognito besides the database. */
export function migrateEnvironment(s: Settings, e: Endpoints): Record<string, string> {
  const { DATABASE_URL: _adminUrlIsASecret, ...rest } = common(s, e);
  return rest;
}

/** The queue backlog publisher (a sidecar of the API task) reads the queue as atelier_app. */
export function queueMetricsEnvironment(s: Settings, e: Endpoints): Record<string, string> {
  return common(s, e);
}

/** Names of the secrets each container receives (values come from Secrets Manager). */
export const SECRET_NAMES = {
  api: ['ATELIER_DB_ROLE_PASSWORD', 'REDIS_URL', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'WEBHOOKS_SECRET_KEY'],
  worker: ['ATELIER_DB_ROLE_PASSWORD', 'WEBHOOKS_SECRET_KEY'],
  queueMetrics: ['ATELIER_DB_ROLE_PASSWORD'],
  migrate: ['DATABASE_URL', 'ATELIER_DB_ROLE_PASSWORD'],
} as const;
