import type { ObjectKey } from './keys.ts';

export interface PutObjectOptions {
  contentType: string;
  /** Hex SHA-256 of the body, recorded as object metadata so a later reader can check it. */
  sha256?: string;
}

export interface ObjectHead {
  /** Unit: bytes. */
  size: number;
  contentType: string | undefined;
}

export interface PresignPutBinding {
  contentType: string;
  /** Unit: bytes. */
  contentLength?: number;
  /** Hex SHA-256 of the body. */
  checksumSha256?: string;
}

/** The headers an uploader must send with a URL from presignPut(key, binding). */
export function presignedPutHeaders(b: PresignPutBinding): Record<string, string> {
  const h: Record<string, string> = { 'content-type': b.contentType };
  if (b.contentLength !== undefined) h['content-length'] = String(b.contentLength);
  if (b.checksumSha256 !== undefined)
    h['x-amz-checksum-sha256'] = Buffer.from(b.checksumSha256, 'hex').toString('base64');
  return h;
}

export interface PresignOptions {
  /** Unit: seconds. Clamped to MAX_PRESIGN_SECONDS. */
  expiresInSeconds?: number;
}

/**
 * Where image bytes live. Every method throws AppError('STORAGE_UNAVAILABLE') when the store
 * cannot be reached or answers with a server error; a missing object is a value (null), not an
 * error. Keys come only from ./keys.ts.
 */
export interface ObjectStore {
  readonly bucket: string;
  /** Creates the bucket if it does not exist (local stack and tests; production buckets come from infra). */
  ensureBucket(): Promise<void>;
  put(key: ObjectKey, body: Uint8Array, opts: PutObjectOptions): Promise<void>;
  get(key: ObjectKey): Promise<Uint8Array | null>;
  head(key: ObjectKey): Promise<ObjectHead | null>;
  /** Deleting a key that does not exist succeeds. */
  delete(keys: readonly ObjectKey[]): Promise<void>;
  /** A GET URL for exactly this key, valid for at most 15 minutes. */
  presignGet(key: ObjectKey, opts?: PresignOptions): Promise<string>;
  /**
   * A PUT URL for exactly this key and content type, valid for at most 15 minutes. With
   * `contentLength` and/or `checksumSha256` the URL is also bound to them: the uploader must send
   * `content-length` and `x-amz-checksum-sha256` (base64 of the SHA-256) with exactly these values,
   * which S3 signs and, for the checksum, verifies against the body (see presignedPutHeaders).
   */
  presignPut(key: ObjectKey, opts: PresignOptions & PresignPutBinding): Promise<string>;
  close(): void;
}
