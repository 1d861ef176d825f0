import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';

describe('logger', () => {
  it('writes JSON lines and redacts tokens, signatures and presigned URLs', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger({ logLevel: 'info' }, sink);
    log.info(
      {
        req: { headers: { authorization: 'Bearer eyJsecret', 'stripe-signature': 't=1,v1=abc', host: 'api' } },
        auth: { token: 'eyJtoken', refreshToken: 'r-secret' },
        image: { url: 'https://bucket.s3/users/u/images/i.png?X-Amz-Signature=deadbeef', id: 'img_1' },
      },
      'request',
    );
    const out = lines.join('');
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      level: 30,
      msg: 'request',
      req: { headers: { host: 'api' } },
      image: { id: 'img_1' },
    });
    for (const secret of ['eyJsecret', 'v1=abc', 'eyJtoken', 'r-secret', 'X-Amz-Signature'])
      expect(out).not.toContain(secret);
    expect(entry.req.headers.authorization).toBe('[redacted]');
  });
});
