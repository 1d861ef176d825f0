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
  /** A PUT URL for exactly this key and content type, valid for at most 15 minutes. */
  presignPut(key: ObjectKey, opts: PresignOptions & { contentType: string }): Promise<string>;
  close(): void;
}
