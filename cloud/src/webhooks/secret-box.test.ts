import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSecretBox, newSigningSecret } from './secret-box.ts';
import { DEVELOPMENT_SECRET_KEY, WebhooksEnvSchema, toWebhooksConfig } from './webhooks-config.ts';

const fail = (m: string): never => {
  throw new Error(m);
};

describe('secret box', () => {
  it('seals per endpoint, and a sealed secret moved to another endpoint does not open', () => {
    const box = createSecretBox([randomBytes(32)]);
    const secret = newSigningSecret();
    const sealed = box.seal('whk_A', secret);
    expect(sealed).not.toContain(secret.slice(6));
    expect(box.open('whk_A', sealed)).toEqual({ secret, stale: false });
    expect(() => box.open('whk_B', sealed)).toThrow();
  });

  it('after a key rotation the previous key still opens old rows, marked stale for re-sealing', () => {
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const sealed = createSecretBox([oldKey]).seal('whk_A', 'whsec_x');
    expect(createSecretBox([newKey, oldKey]).open('whk_A', sealed)).toEqual({ secret: 'whsec_x', stale: true });
    expect(() => createSecretBox([newKey]).open('whk_A', sealed)).toThrow(/WEBHOOKS_SECRET_KEY_PREVIOUS/);
  });

  it('refuses to start without a key', () => {
    expect(() => createSecretBox([])).toThrow(/WEBHOOKS_SECRET_KEY is required/);
  });
});

describe('webhooks config', () => {
  const parse = (env: Record<string, string>, production: boolean) =>
    toWebhooksConfig(WebhooksEnvSchema.parse(env), { production }, fail);

  it('production: no development key, no private targets, https only, and no key means no box', () => {
    expect(() => parse({ WEBHOOKS_SECRET_KEY: DEVELOPMENT_SECRET_KEY }, true)).toThrow(/WEBHOOKS_SECRET_KEY/);
    const key = randomBytes(32).toString('base64');
    expect(() => parse({ WEBHOOKS_SECRET_KEY: key, WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true' }, true)).toThrow(
      /WEBHOOKS_ALLOW_PRIVATE_TARGETS/,
    );
    expect(parse({ WEBHOOKS_SECRET_KEY: key }, true)).toMatchObject({ requireHttps: true, allowPrivateTargets: false });
    expect(parse({ WEBHOOKS_SECRET_KEY_PREVIOUS: key }, true).secretKeys).toEqual([]);
    expect(() => WebhooksEnvSchema.parse({ WEBHOOKS_SECRET_KEY: 'short' })).toThrow(/32 random bytes/);
  });

  it('development: the fixed key, private targets off unless asked for', () => {
    const c = parse({}, false);
    expect(c.secretKeys).toHaveLength(1);
    expect(c).toMatchObject({ allowPrivateTargets: false, requireHttps: false });
    expect(parse({ WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true' }, false).allowPrivateTargets).toBe(true);
  });

  it('a Secrets Manager value of 43 alphanumerics decodes to a 32-byte key', () => {
    const generated = 'aZ09'.repeat(10) + 'xYz';
    expect(parse({ WEBHOOKS_SECRET_KEY: generated }, true).secretKeys[0]).toHaveLength(32);
  });
});
