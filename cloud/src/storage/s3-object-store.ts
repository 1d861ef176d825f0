import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AppError } from '@atelier/common';
import type { ObjectKey } from './keys.ts';
import { MAX_PRESIGN_SECONDS } from './keys.ts';
import { presignedPutHeaders } from './object-store.ts';
import type { ObjectHead, ObjectStore, PresignOptions, PresignPutBinding, PutObjectOptions } from './object-store.ts';

export interface S3StoreConfig {
  /** Absent means AWS's regional endpoint; set for MinIO, s3rver or a VPC endpoint. */
  endpoint?: string | undefined;
  region: string;
  bucket: string;
  /** `true` for s3rver and MinIO (`http://host/bucket/key` instead of `http://bucket.host/key`). */
  forcePathStyle: boolean;
  /** Absent means the SDK's default chain (env, ECS task role, instance profile). */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** SDK attempts per call, including the first. Unit: attempts. */
  maxAttempts?: number;
  /** Unit: milliseconds. */
  connectionTimeoutMs?: number;
  /** Unit: milliseconds. */
  requestTimeoutMs?: number;
}

/** Errors S3 answers for a key or bucket that is not there, rather than for an outage. */
function isNotFound(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  return err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404;
}

function unavailable(op: string, err: unknown): AppError {
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new AppError('STORAGE_UNAVAILABLE', `S3 ${op} failed: ${detail}`, { cause: err });
}

function clampExpiry(opts: PresignOptions | undefined): number {
  const wanted = opts?.expiresInSeconds ?? MAX_PRESIGN_SECONDS;
  return Math.max(1, Math.min(MAX_PRESIGN_SECONDS, Math.floor(wanted)));
}

/** The ObjectStore on @aws-sdk/client-s3: AWS S3, MinIO and s3rver alike. */
export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  readonly #client: S3Client;

  constructor(config: S3StoreConfig) {
    this.bucket = config.bucket;
    this.#client = new S3Client({
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
      maxAttempts: config.maxAttempts ?? 3,
      requestHandler: {
        connectionTimeout: config.connectionTimeoutMs ?? 2_000,
        requestTimeout: config.requestTimeoutMs ?? 30_000,
      },
      // s3rver and MinIO do not all understand the newer default integrity checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      if (!isNotFound(err)) throw unavailable('HeadBucket', err);
    }
    try {
      await this.#client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return;
      throw unavailable('CreateBucket', err);
    }
  }

  async put(key: ObjectKey, body: Uint8Array, opts: PutObjectOptions): Promise<void> {
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: opts.contentType,
          ContentLength: body.byteLength,
          ...(opts.sha256 ? { Metadata: { sha256: opts.sha256 } } : {}),
        }),
      );
    } catch (err) {
      throw unavailable('PutObject', err);
    }
  }

  async get(key: ObjectKey): Promise<Uint8Array | null> {
    try {
      const out = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) return new Uint8Array();
      return await out.Body.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw unavailable('GetObject', err);
    }
  }

  async head(key: ObjectKey): Promise<ObjectHead | null> {
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: out.ContentLength ?? 0, contentType: out.ContentType };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw unavailable('HeadObject', err);
    }
  }

  async delete(keys: readonly ObjectKey[]): Promise<void> {
    // DeleteObjects takes at most 1000 keys per call.
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const out = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        if (failed.length > 0) throw new Error(`${failed.length} objects not deleted: ${failed[0]?.Code ?? ''}`);
      } catch (err) {
        throw unavailable('DeleteObjects', err);
      }
    }
  }

  async presignGet(key: ObjectKey, opts?: PresignOptions): Promise<string> {
    try {
      return await getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
        expiresIn: clampExpiry(opts),
      });
    } catch (err) {
      throw unavailable('presign GetObject', err);
    }
  }

  async presignPut(key: ObjectKey, opts: PresignOptions & PresignPutBinding): Promise<string> {
    const bound = presignedPutHeaders(opts);
    try {
      return await getSignedUrl(
        this.#client,
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ContentType: opts.contentType,
          ...(opts.contentLength !== undefined ? { ContentLength: opts.contentLength } : {}),
          ...(bound['x-amz-checksum-sha256'] ? { ChecksumSHA256: bound['x-amz-checksum-sha256'] } : {}),
        }),
        {
          expiresIn: clampExpiry(opts),
          // Signed headers: a PUT with another type, length or checksum does not match the signature.
          signableHeaders: new Set(Object.keys(bound)),
          // Kept as a header (not hoisted into the query) so S3 checks the body against it.
          unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
        },
      );
    } catch (err) {
      throw unavailable('presign PutObject', err);
    }
  }

  close(): void {
    this.#client.destroy();
  }
}
