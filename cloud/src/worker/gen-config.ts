/**
 * Cloud generation's part of the configuration (issue 5): S3, the model catalogue and the worker.
 * The variables are spread into config.ts's EnvSchema; `toGenConfig` builds the section. Defaults
 * make the local stack work with nothing set (s3rver on loopback, the project's fixture models).
 */
import path from 'node:path';
import { z } from 'zod';
import { parseCatalogueEnv } from '../catalogue/catalogue.ts';
import type { CatalogueInput } from '../catalogue/catalogue.ts';
import { MAX_PRESIGN_SECONDS } from '../storage/keys.ts';
import type { S3StoreConfig } from '../storage/s3-object-store.ts';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);

/** The repository root, for the default models folder (native/fixtures/models). */
const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

export const GEN_ENV = {
  /** S3 API endpoint. Unset in production = AWS's regional endpoint; unset elsewhere = local s3rver. */
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** At least 3 characters (S3 and s3rver both insist). */
  S3_BUCKET: z.string().min(3).max(63).default('atelier-local'),
  /** `http://host/bucket/key` addressing (s3rver, MinIO). Default: true unless production. */
  S3_FORCE_PATH_STYLE: bool.optional(),
  /** Static credentials (MinIO, s3rver). Unset = the SDK's default chain (task role, env, profile). */
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** SDK attempts per S3 call, including the first. */
  S3_MAX_ATTEMPTS: int(3, 1, 10),
  /** Unit: milliseconds. */
  S3_CONNECT_TIMEOUT_MS: int(2_000, 100),
  /** Unit: milliseconds. */
  S3_REQUEST_TIMEOUT_MS: int(30_000, 100),
  /** Unit: seconds a presigned GET/PUT URL stays valid; at most 900 (15 minutes). */
  S3_PRESIGN_SECONDS: int(MAX_PRESIGN_SECONDS, 1, MAX_PRESIGN_SECONDS),
  /** JSON array of `{ id, name?, plans?, default?, dir? }`; see catalogue/catalogue.ts. */
  ATELIER_CLOUD_MODELS: z.string().optional(),
  /** Where catalogue model folders live on a worker (relative `dir`s resolve against it). */
  ATELIER_MODELS_DIR: z.string().min(1).optional(),
  /**
   * Jobs one worker process holds at once. The engine runs one generation at a time either way;
   * a second slot overlaps one job's upload and bookkeeping with the next job's generation.
   */
  WORKER_CONCURRENCY: int(2, 1, 64),
  /** Intra-op threads per engine session; 0 = the engine's default (physical cores). */
  WORKER_ENGINE_THREADS: int(0, 0, 256),
  /** Unit: hours a deleted image's objects are kept before the janitor removes them. */
  IMAGE_RETENTION_HOURS: int(24 * 7, 0),
  /** Unit: hours a completed starting image or mask is kept for generations to name (issue 15). */
  INPUT_RETENTION_HOURS: int(24 * 7, 1),
  /** Unit: seconds between janitor passes; 0 turns the janitor off in this process. */
  JANITOR_INTERVAL_SECONDS: int(300, 0),
};

export const GenEnvSchema = z.object(GEN_ENV);
type GenEnv = z.output<typeof GenEnvSchema>;

export interface GenConfig {
  s3: S3StoreConfig & { presignSeconds: number };
  catalogue: CatalogueInput;
  modelsRoot: string;
  worker: {
    concurrency: number;
    /** 0 = the engine's default. */
    engineThreads: number;
    /** Unit: milliseconds. */
    retentionMs: number;
    /** Unit: milliseconds; 0 = off. */
    janitorIntervalMs: number;
    /** Unit: seconds a completed input is kept (the API sets its expiry; the workers sweep it). */
    inputRetentionSeconds: number;
  };
}

/** The local stack's s3rver port when S3_ENDPOINT is unset outside production. */
export const LOCAL_S3_PORT = 4569;

export function toGenConfig(e: GenEnv, ctx: { production: boolean }, fail: (message: string) => never): GenConfig {
  const problems: string[] = [];
  let catalogue: CatalogueInput = [];
  try {
    catalogue = parseCatalogueEnv(e.ATELIER_CLOUD_MODELS);
  } catch (err) {
    problems.push(`  ${(err as Error).message}`);
  }
  if ((e.S3_ACCESS_KEY_ID === undefined) !== (e.S3_SECRET_ACCESS_KEY === undefined))
    problems.push('  S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY: set both or neither');
  if (ctx.production && e.S3_ENDPOINT?.startsWith('http://'))
    problems.push('  S3_ENDPOINT: production requires https (presigned URLs carry the signature in the clear)');
  if (problems.length) fail(`Invalid configuration:\n${problems.join('\n')}`);

  const local = !ctx.production;
  const endpoint = e.S3_ENDPOINT ?? (local ? `http://127.0.0.1:${LOCAL_S3_PORT}` : undefined);
  const credentials =
    e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY
      ? { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY }
      : local
        ? { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
        : undefined;
  return {
    s3: {
      endpoint,
      region: e.S3_REGION,
      bucket: e.S3_BUCKET,
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? local,
      credentials,
      maxAttempts: e.S3_MAX_ATTEMPTS,
      connectionTimeoutMs: e.S3_CONNECT_TIMEOUT_MS,
      requestTimeoutMs: e.S3_REQUEST_TIMEOUT_MS,
      presignSeconds: e.S3_PRESIGN_SECONDS,
    },
    catalogue,
    modelsRoot: path.resolve(e.ATELIER_MODELS_DIR ?? path.join(REPO_ROOT, 'native/fixtures/models')),
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      engineThreads: e.WORKER_ENGINE_THREADS,
      retentionMs: e.IMAGE_RETENTION_HOURS * 3_600_000,
      janitorIntervalMs: e.JANITOR_INTERVAL_SECONDS * 1000,
      inputRetentionSeconds: e.INPUT_RETENTION_HOURS * 3600,
    },
  };
}
