/**
 * s3rver in a process of its own for bench:sync (`--s3 own`, the default there): in any real
 * deployment the object store is not the API's process, so the API's work for a sync should not
 * be taken from the same event loop that serves every byte — of the engine and of aws/rclone alike.
 * Prints `READY <endpoint>` and stops on SIGINT/SIGTERM.
 * Env: S3_DIR (data directory), S3_BUCKET, S3_PORT.
 */
import { startLocalS3 } from '../cloud/src/storage/local-s3.ts';

const need = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const s3 = await startLocalS3({
  directory: need('S3_DIR'),
  bucket: need('S3_BUCKET'),
  port: Number(need('S3_PORT')),
});
console.log(`READY ${s3.endpoint}`);
const stop = () => void s3.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
