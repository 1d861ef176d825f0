import { describe, expect, it } from 'vitest';
import { presignedExpiry } from './sync-engine.ts';

describe('presignedExpiry: when a feed URL stops working (the downloader asks for a new one before)', () => {
  it('is X-Amz-Date plus X-Amz-Expires', () => {
    const url =
      'http://127.0.0.1:9/bucket/users/u/images/img_1.png?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
      '&X-Amz-Date=20261203T123456Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=ab';
    expect(new Date(presignedExpiry(url)).toISOString()).toBe('2026-12-03T12:49:56.000Z');
  });

  it('is 0 (ask again) for a URL that does not say, or is not a URL', () => {
    expect(presignedExpiry('http://127.0.0.1:9/bucket/x.png')).toBe(0);
    expect(presignedExpiry('http://h/x?X-Amz-Date=yesterday&X-Amz-Expires=900')).toBe(0);
    expect(presignedExpiry('not a url')).toBe(0);
  });
});
