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
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
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

/** Where a GET of a key goes, learned from one URL the SDK presigned (its endpoint rules decide). */
interface GetTemplate {
  presigner: S3RequestPresigner;
  protocol: string;
  hostname: string;
  port: number | undefined;
  /** The path before the key: `/bucket/` (path style) or `/` (virtual-hosted). */
  prefix: string;
}

const PROBE_KEY = 'atelier-presign-probe';
/** S3's key escaping: every segment URI-encoded (RFC 3986 unreserved kept), the slashes kept. */
const escapeKey = (key: string) =>
  key
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');

/** The ObjectStore on @aws-sdk/client-s3: AWS S3, MinIO and s3rver alike. */
export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  readonly #client: S3Client;
  #getTemplate: Promise<GetTemplate> | null = null;

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

  /**
   * Presigned GETs are on every gallery page and change-feed page (two per image), and the SDK's
   * `getSignedUrl` runs the whole middleware stack and endpoint rules per call (about 1.5 ms,
   * which made a 200-image feed page take most of a second). The endpoint of a GET does not
   * depend on the key, so it is learned once from a URL the SDK presigned, and each key is then
   * signed by the SDK's own S3 presigner on a request built from it: same signer, same URL form.
   */
  async presignGet(key: ObjectKey, opts?: PresignOptions): Promise<string> {
    try {
      return await this.#presignOnTemplate('GET', key, 'GetObject', {}, clampExpiry(opts));
    } catch (err) {
      throw unavailable('presign GetObject', err);
    }
  }

  /**
   * Signs `method` on `key` with the SDK's S3 presigner on a request built from the learned
   * endpoint (decision 0145). `headers` are signed (and so must be sent as they are); x-amz-*
   * ones in `unhoistable` stay headers instead of moving into the query.
   */
  async #presignOnTemplate(
    method: 'GET' | 'PUT',
    key: ObjectKey,
    operation: string,
    headers: Record<string, string>,
    expiresIn: number,
    unhoistable: readonly string[] = [],
  ): Promise<string> {
    const t = await (this.#getTemplate ??= this.#learnGetTemplate().catch((e: unknown) => {
      this.#getTemplate = null;
      throw e;
    }));
    const signed = await t.presigner.presign(
      {
        method,
        protocol: t.protocol,
        hostname: t.hostname,
        ...(t.port !== undefined ? { port: t.port } : {}),
        path: `${t.prefix}${escapeKey(key)}`,
        query: { 'x-id': operation },
        headers: { ...headers, host: t.port !== undefined ? `${t.hostname}:${t.port}` : t.hostname },
      },
      {
        expiresIn,
        ...(Object.keys(headers).length > 0 ? { signableHeaders: new Set(Object.keys(headers)) } : {}),
        ...(unhoistable.length > 0 ? { unhoistableHeaders: new Set(unhoistable) } : {}),
      },
    );
    const query = Object.entries(signed.query ?? {})
      .flatMap(([k, v]) =>
        (Array.isArray(v) ? v : [v]).map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(x ?? '')}`),
      )
      .join('&');
    return `${t.protocol}//${signed.headers.host ?? t.hostname}${signed.path}?${query}`;
  }

  /** The SDK's own presigning, one call per URL (the reference presignGet is checked against). */
  async presignGetWithSdk(key: ObjectKey, opts?: PresignOptions): Promise<string> {
    return getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: clampExpiry(opts),
    });
  }

  async #learnGetTemplate(): Promise<GetTemplate> {
    const probe = new URL(
      await getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.bucket, Key: PROBE_KEY }), {
        expiresIn: 60,
      }),
    );
    if (!probe.pathname.endsWith(`/${PROBE_KEY}`)) throw new Error(`unexpected presigned URL form: ${probe.pathname}`);
    const region = probe.searchParams.get('X-Amz-Credential')?.split('/')[2] ?? (await this.#client.config.region());
    return {
      presigner: new S3RequestPresigner({ ...this.#client.config, signingName: 's3', region: async () => region }),
      protocol: probe.protocol,
      hostname: probe.hostname,
      port: probe.port ? Number(probe.port) : undefined,
      prefix: probe.pathname.slice(0, -PROBE_KEY.length),
    };
  }

  /**
   * A batch reservation signs two PUTs per image (decision 0146), and `getSignedUrl` costs about
   * 1 ms each on the API's event loop: PUTs are signed on the learned endpoint too (decision
   * 0147), with the same signed headers and the checksum kept a header, as `presignPutWithSdk`.
   */
  async presignPut(key: ObjectKey, opts: PresignOptions & PresignPutBinding): Promise<string> {
    // Signed headers: a PUT with another type, length or checksum does not match the signature.
    const bound = presignedPutHeaders(opts);
    try {
      // The checksum is kept a header (not hoisted into the query) so S3 checks the body against it.
      return await this.#presignOnTemplate('PUT', key, 'PutObject', bound, clampExpiry(opts), [
        'x-amz-checksum-sha256',
      ]);
    } catch (err) {
      throw unavailable('presign PutObject', err);
    }
  }

  /** The SDK's own presigning of a PUT (the reference presignPut is checked against). */
  async presignPutWithSdk(key: ObjectKey, opts: PresignOptions & PresignPutBinding): Promise<string> {
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
          signableHeaders: new Set(Object.keys(bound)),
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
