/**
 * Security headers (helmet's), computed once. @fastify/helmet builds a new helmet middleware on
 * every request; with CSP nonces off, helmet's headers depend only on its options, so the API runs
 * helmet once at start-up and sets the resulting headers on every reply (same names, same values;
 * cloud/test/ops.test.ts compares them with @fastify/helmet's).
 */
import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyInstance {
    /** The helmet headers as [name, value] pairs, for replies sent before the hooks run. */
    securityHeaders: Array<[string, string]>;
  }
}
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const HELMET_OPTIONS: Readonly<HelmetOptions> = {
  // The API serves JSON; the docs page needs swagger-ui's scripts, which it allows itself.
  contentSecurityPolicy: false,
  crossOriginResourcePolicy: { policy: 'same-site' },
};

/** The headers helmet sets with these options (lower-case names). */
export function helmetHeaders(opts: Readonly<HelmetOptions> = HELMET_OPTIONS): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: unknown) {
      headers[name.toLowerCase()] = String(value);
      return res;
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let done = false;
  helmet({ ...opts })({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
    done = true;
  });
  if (!done || Object.keys(headers).length === 0) throw new Error('helmet did not set its headers synchronously');
  return headers;
}

/** Sets the headers on every reply, first thing in onRequest (so errors and 404s carry them too). */
export function securityHeaders(app: FastifyInstance, opts: Readonly<HelmetOptions> = HELMET_OPTIONS): void {
  const headers = Object.entries(helmetHeaders(opts));
  // Router errors (bad percent-encoding) are answered before any hook runs: frameworkErrors uses this.
  app.decorate('securityHeaders', headers);
  app.addHook('onRequest', (_req, reply, next) => {
    for (const [name, value] of headers) reply.raw.setHeader(name, value);
    next();
  });
}
