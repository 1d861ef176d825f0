/**
 * Starts cognito-local the way its own bin (cognito-local/lib/bin/start.js) does — same server,
 * same pretty log format, which mailbox.ts parses — with one difference: the pretty lines go to
 * process.stdout. The bin lets pino-pretty 7 write through its bundled sonic-boom 2.8, which counts
 * a string's characters but subtracts the bytes written; every code-delivery box (drawn with
 * 3-byte box characters) drives that count further below zero, and once it is negative the logger
 * stops writing until enough new output arrives. After a few sign-ups the next code stayed in
 * cognito-local's buffer, so it reached neither the mailbox page nor the terminal.
 */
import https from 'node:https';
import { createRequire } from 'node:module';
import type { Server } from 'node:net';
import path from 'node:path';

const root = path.dirname(createRequire(import.meta.url).resolve('cognito-local/package.json'));
// cognito-local's own pino and pino-pretty (its versions), as its bin loads them.
const fromCognitoLocal = createRequire(path.join(root, 'package.json'));
type Logger = { info(msg: string): void; error(err: unknown): void };
const pino = fromCognitoLocal('pino') as (opts: object, stream: NodeJS.WritableStream) => Logger;
const pretty = fromCognitoLocal('pino-pretty') as (opts: object) => NodeJS.WritableStream;
const { createDefaultServer } = fromCognitoLocal('./lib/server/index.js') as {
  createDefaultServer(logger: Logger): Promise<{ start(): Promise<Server> }>;
};

const logger = pino(
  { level: process.env.DEBUG ? 'debug' : 'info' },
  pretty({
    colorize: true,
    ignore: 'pid,name,hostname',
    singleLine: true,
    messageFormat: (log: Record<string, unknown>, messageKey: string) =>
      `${String(log.reqId ?? 'NONE')} ${String(log.target ?? 'NONE')} ${String(log[messageKey])}`,
    // A Node stream encodes and counts bytes itself (and pipes are written synchronously on Linux).
    destination: process.stdout,
  }),
);

try {
  const server = await (await createDefaultServer(logger)).start();
  const address = server.address();
  if (!address) throw new Error('Server started without address');
  const url = typeof address === 'string' ? address : `${address.address}:${address.port}`;
  logger.info(`Cognito Local running on ${server instanceof https.Server ? 'https' : 'http'}://${url}`);
} catch (err) {
  logger.error(err);
  process.exit(1);
}
