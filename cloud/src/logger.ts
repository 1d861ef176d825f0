import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

/** Paths never written to logs: credentials, signatures and presigned URLs. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["stripe-signature"]',
  'req.headers["sec-websocket-protocol"]',
  'res.headers["set-cookie"]',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.idToken',
  '*.password',
  '*.url',
  '*.thumbUrl',
  '*.uploadUrl',
  '*.presignedUrl',
];

/** The process's root logger: JSON lines, request ids from Fastify, secrets redacted. */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): Logger {
  const opts = {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'atelier-api' },
  };
  return destination ? pino(opts, destination) : pino(opts);
}
