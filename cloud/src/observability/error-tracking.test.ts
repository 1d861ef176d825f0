import { createTransport } from '@sentry/node';
import { describe, expect, it } from 'vitest';
import { createErrorTracker, scrubEvent, scrubString } from './error-tracking.ts';

const JWT =
  'eyJraWQiOiJDb2duaXRvTG9jYWwiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJ0b2tlbl91c2UiOiJhY2Nlc3MifQ.c2lnbmF0dXJlLWJ5dGVz';
const PRESIGNED =
  'https://atelier-images.s3.eu-west-1.amazonaws.com/users/u1/images/img_1.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F&X-Amz-Signature=deadbeefcafe';
const PROMPT = 'a portrait of my neighbour Ada Lovelace in her garden';

describe('scrubString', () => {
  it('removes JWTs, bearer tokens, presigned query strings and Stripe keys', () => {
    const out = scrubString(
      `auth Bearer ${JWT} url ${PRESIGNED} key sk_live_51Habc123 proto bearer.${JWT} hook whsec_abc123`,
    );
    for (const secret of [JWT, 'X-Amz-Signature', 'deadbeefcafe', 'sk_live_51Habc123', 'whsec_abc123', 'AKIA'])
      expect(out).not.toContain(secret);
    expect(out).toContain('https://atelier-images.s3.eu-west-1.amazonaws.com/users/u1/images/img_1.png');
  });
});

describe('scrubEvent (Sentry beforeSend)', () => {
  it('keeps the user id and the error, drops prompts, tokens, presigned URLs, bodies, headers and query strings', () => {
    const event = scrubEvent({
      type: undefined,
      message: `failed for ${PRESIGNED}`,
      user: { id: 'user-1', email: 'ada@example.com', ip_address: '10.0.0.1' },
      request: {
        method: 'POST',
        url: `https://api.atelier.example/v1/generations?token=${JWT}`,
        data: { prompt: PROMPT },
        headers: { authorization: `Bearer ${JWT}` },
        cookies: { session: 'abc' },
        query_string: `token=${JWT}`,
      },
      exception: { values: [{ type: 'Error', value: `engine refused the job with Bearer ${JWT}` }] },
      extra: { body: { prompt: PROMPT, negativePrompt: 'blurry', steps: 4 }, thumbUrl: PRESIGNED },
      contexts: { job: { positive_prompt: PROMPT, seed: 42 } },
      breadcrumbs: [{ message: `GET ${PRESIGNED}` }],
      tags: { request_id: 'req-1' },
    });
    const text = JSON.stringify(event);
    for (const secret of [JWT, 'X-Amz-Signature', 'ada@example.com', '10.0.0.1', 'blurry', 'session'])
      expect(text).not.toContain(secret);
    expect(text).not.toContain(PROMPT);
    expect(event.user).toEqual({ id: 'user-1' });
    expect(event.request).toEqual({ method: 'POST', url: 'https://api.atelier.example/v1/generations' });
    expect(event.extra).toMatchObject({ body: { prompt: '[redacted]', negativePrompt: '[redacted]', steps: 4 } });
    expect(event.contexts).toMatchObject({ job: { positive_prompt: '[redacted]', seed: 42 } });
    expect(event.tags).toEqual({ request_id: 'req-1' });
  });
});

describe('createErrorTracker', () => {
  it('is off without a DSN', () => {
    expect(createErrorTracker({ sentryDsn: null, environment: 'test', release: null }).enabled).toBe(false);
  });

  it('sends an event with the user id and request id, scrubbed, through the transport', async () => {
    const sent: string[] = [];
    const tracker = createErrorTracker(
      { sentryDsn: 'https://public@sentry.example/1', environment: 'test', release: 'api@1.2.3' },
      {
        transport: (options) =>
          createTransport(options, async (req) => {
            sent.push(typeof req.body === 'string' ? req.body : Buffer.from(req.body).toString('utf8'));
            return { statusCode: 200 };
          }),
      },
    );
    tracker.capture(new Error(`worker failed on ${PRESIGNED} for token ${JWT}`), {
      requestId: 'req-42',
      userId: 'user-7',
      route: '/v1/generations',
    });
    await tracker.close(2_000);
    expect(sent.length).toBe(1);
    const body = sent[0]!;
    expect(body).toContain('"id":"user-7"');
    expect(body).toContain('"request_id":"req-42"');
    expect(body).toContain('"environment":"test"');
    expect(body).toContain(
      'worker failed on https://atelier-images.s3.eu-west-1.amazonaws.com/users/u1/images/img_1.png',
    );
    expect(body).not.toContain(JWT);
    expect(body).not.toContain('X-Amz-Signature');
  });
});
