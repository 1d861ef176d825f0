/**
 * Signing secrets at rest: AES-256-GCM under the server key (WEBHOOKS_SECRET_KEY), with the
 * endpoint id as associated data so a ciphertext copied onto another endpoint's row does not
 * decrypt. The stored form names its key by a short fingerprint, so after a rotation the previous
 * key still opens old rows until they are re-sealed (the worker does it on the next delivery).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const fingerprint = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 8);

export interface SecretBox {
  seal(endpointId: string, secret: string): string;
  /** The plain secret, and whether it was sealed under an older key (re-seal it). */
  open(endpointId: string, sealed: string): { secret: string; stale: boolean };
}

export function createSecretBox(keys: readonly Buffer[]): SecretBox {
  if (keys.length === 0)
    throw new Error('WEBHOOKS_SECRET_KEY is required in production (32 random bytes, base64; from Secrets Manager)');
  if (keys.some((k) => k.length !== 32)) throw new Error('webhook secret keys must be 32 bytes');
  const byPrint = new Map(keys.map((k) => [fingerprint(k), k]));
  const current = keys[0]!;
  const currentPrint = fingerprint(current);
  return {
    seal(endpointId, secret) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', current, iv);
      c.setAAD(Buffer.from(endpointId));
      const ct = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
      return ['v1', currentPrint, iv.toString('base64'), c.getAuthTag().toString('base64'), ct.toString('base64')].join(
        ':',
      );
    },
    open(endpointId, sealed) {
      const [v, print, iv, tag, ct] = sealed.split(':');
      const key = print ? byPrint.get(print) : undefined;
      if (v !== 'v1' || !key || !iv || !tag || ct === undefined)
        throw new Error('webhook secret sealed under an unknown key (set WEBHOOKS_SECRET_KEY_PREVIOUS)');
      const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
      d.setAAD(Buffer.from(endpointId));
      d.setAuthTag(Buffer.from(tag, 'base64'));
      const secret = Buffer.concat([d.update(Buffer.from(ct, 'base64')), d.final()]).toString('utf8');
      return { secret, stale: print !== currentPrint };
    },
  };
}

/** A new signing secret: `whsec_` + 32 random bytes in hex. */
export const newSigningSecret = () => `whsec_${randomBytes(32).toString('hex')}`;
