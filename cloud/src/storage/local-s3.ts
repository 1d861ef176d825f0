/**
 * An S3-compatible server on local disk (s3rver) for the local stack and the tests. It is a real
 * HTTP S3 API, so the code under test talks to it exactly as it talks to AWS.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string; configs: string[] }[];
  allowMismatchedSignatures: boolean;
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

/** s3rver accepts any credentials; these are what its documentation suggests. */
export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const LOCAL_S3_REGION = 'us-east-1';

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  region: string;
  port: number;
  directory: string;
  close(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1 (port 0 = a free port) with `bucket` created. */
export async function startLocalS3(opts: { directory: string; bucket: string; port?: number }): Promise<LocalS3> {
  mkdirSync(opts.directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port ?? 0,
    silent: true,
    directory: opts.directory,
    configureBuckets: [{ name: opts.bucket, configs: [] }],
    allowMismatchedSignatures: false,
  });
  const address = await server.run();
  let closed = false;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket: opts.bucket,
    region: LOCAL_S3_REGION,
    port: address.port,
    directory: opts.directory,
    close: async () => {
      if (closed) return;
      closed = true;
      await server.close();
    },
  };
}
