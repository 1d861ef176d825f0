import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.ts';

const prod = {
  NODE_ENV: 'production',
  COGNITO_REGION: 'eu-west-1',
  COGNITO_USER_POOL_ID: 'eu-west-1_abc',
  PUBLIC_API_URL: 'https://api.example.com',
};

describe('cloud-gen config', () => {
  it('defaults to the local stack: s3rver on loopback, path-style, the fixture catalogue', () => {
    const c = parseConfig({}).gen;
    expect(c.s3).toMatchObject({ endpoint: 'http://127.0.0.1:4569', forcePathStyle: true, presignSeconds: 900 });
    expect(c.catalogue.map((m) => m.id)).toEqual([
      'atelier-demo-shapes',
      'atelier-fixture-sd',
      'atelier-fixture-turbo',
    ]);
    expect(c.modelsRoot).toMatch(/native\/fixtures\/models$/);
    expect(c.worker).toMatchObject({ concurrency: 2, retentionMs: 7 * 24 * 3_600_000 });
  });

  it('uses AWS defaults in production: regional endpoint, virtual-hosted style, the credential chain', () => {
    const c = parseConfig(prod).gen;
    expect(c.s3.endpoint).toBeUndefined();
    expect(c.s3.forcePathStyle).toBe(false);
    expect(c.s3.credentials).toBeUndefined();
  });

  it.each([
    [{ S3_ENDPOINT: 'http://minio.internal:9000' }, /S3_ENDPOINT: production requires https/],
    [{ S3_ACCESS_KEY_ID: 'only-one' }, /S3_ACCESS_KEY_ID \/ S3_SECRET_ACCESS_KEY/],
    [{ S3_PRESIGN_SECONDS: '3600' }, /S3_PRESIGN_SECONDS/],
    [{ S3_BUCKET: 'ab' }, /S3_BUCKET/],
    [{ ATELIER_CLOUD_MODELS: '[{"id":"x","plans":["gold"]}]' }, /ATELIER_CLOUD_MODELS: 0.plans.0/],
    [{ WORKER_CONCURRENCY: '0' }, /WORKER_CONCURRENCY/],
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => parseConfig({ ...prod, ...env })).toThrow(message);
  });
});
