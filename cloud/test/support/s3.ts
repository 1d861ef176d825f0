/** s3rver for tests: a fresh bucket in a fresh directory on a random port. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LOCAL_S3_CREDENTIALS, startLocalS3 } from '../../src/storage/local-s3.ts';
import type { LocalS3 } from '../../src/storage/local-s3.ts';
import { S3ObjectStore } from '../../src/storage/s3-object-store.ts';
import type { S3StoreConfig } from '../../src/storage/s3-object-store.ts';

export interface TestS3 extends LocalS3 {
  /** Config for an S3ObjectStore (or a worker's env) pointing at this server. */
  config: S3StoreConfig;
  store(overrides?: Partial<S3StoreConfig>): S3ObjectStore;
}

export async function startTestS3(bucket = 'atelier-test'): Promise<TestS3> {
  const directory = mkdtempSync(path.join(tmpdir(), 'atelier-s3-'));
  const s3 = await startLocalS3({ directory, bucket });
  const config: S3StoreConfig = {
    endpoint: s3.endpoint,
    region: s3.region,
    bucket,
    forcePathStyle: true,
    credentials: { ...LOCAL_S3_CREDENTIALS },
    maxAttempts: 2,
  };
  const stores: S3ObjectStore[] = [];
  return {
    ...s3,
    config,
    store: (overrides) => {
      const s = new S3ObjectStore({ ...config, ...overrides });
      stores.push(s);
      return s;
    },
    close: async () => {
      for (const s of stores) s.close();
      await s3.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
