/**
 * The signature on every delivery, in the style of Stripe's: the header
 * `Atelier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<exact body>")>`.
 * Signing the timestamp with the body lets a receiver refuse a captured request replayed later
 * (docs/WEBHOOKS.md shows the receiving side).
 */
import { createHmac } from 'node:crypto';

export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}
