/**
 * Bytes to and from presigned S3 URLs on node:http / node:https with keep-alive agents (decision
 * 0162): the sync engine's PUTs and GETs, cloud job results and account exports. The API calls stay
 * on fetch (small JSON bodies); object bodies do not, because fetch copies a request body twice
 * (a web-stream clone) and gathers a response into one fresh ArrayBuffer, which on this class of
 * machine cost more CPU than moving the bytes (bench:sync's CPU profile, BENCHMARKS.md).
 *
 * No Authorization header ever: a presigned URL is its own credential. Errors are AppErrors:
 * OFFLINE when the network fails (the caller decides whether that makes the app offline),
 * STORAGE_UNAVAILABLE for an HTTP error (retryable for 5xx) or a body shorter than announced.
 */
import { AppError } from '@atelier/common';
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';

export interface TransferOptions {
  /** Unit: ms without a byte either way before the transfer is abandoned (default 60 s). */
  idleTimeoutMs?: number;
  /** Unit: ms for the whole transfer (default: none beyond the idle timeout). */
  timeoutMs?: number;
}

export interface FileDownloadOptions extends TransferOptions {
  /** fsync the file before resolving (the library's full images; not a cache such as a thumbnail). */
  fsync?: boolean;
  /** Bytes received so far and the announced total (null when the server did not say). */
  onProgress?: (receivedBytes: number, totalBytes: number | null) => void;
}

export interface ReceivedFile {
  /** Unit: bytes written. */
  size: number;
  /** Hex SHA-256 of exactly the bytes written, computed as they arrived. */
  sha256: string;
}

/** Unit: bytes gathered before they are written to the file in one writev (most images: once). */
const WRITE_BATCH = 4 * 1024 * 1024;

export type ObjectTransfer = ReturnType<typeof createObjectTransfer>;

export function createObjectTransfer(opts: { maxSockets?: number } = {}) {
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 32, scheduling: 'lifo' as const };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };

  /**
   * One request; resolves with the response once its head arrives. A request that fails on a
   * reused keep-alive socket (the server closed it meanwhile) is sent once more on a new one, as
   * Node's documentation advises: no byte of it reached the server's application.
   */
  function send(
    method: 'GET' | 'PUT',
    url: string,
    headers: Record<string, string>,
    body: Uint8Array | null,
    o: TransferOptions,
    retried = false,
  ): Promise<http.IncomingMessage> {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : null;
    if (!mod) return Promise.reject(new AppError('BAD_REQUEST', `not an http(s) URL: ${u.protocol}`));
    return new Promise((resolve, reject) => {
      const req = mod.request(u, {
        method,
        headers: body ? { ...headers, 'content-length': String(body.byteLength) } : headers,
        agent: u.protocol === 'https:' ? agents.https : agents.http,
        timeout: o.idleTimeoutMs ?? 60_000,
        ...(o.timeoutMs !== undefined ? { signal: AbortSignal.timeout(o.timeoutMs) } : {}),
      });
      req.once('timeout', () => req.destroy(Object.assign(new Error('no data for too long'), { code: 'ETIMEDOUT' })));
      req.once('response', resolve);
      req.once('error', (e: NodeJS.ErrnoException) => {
        if (req.reusedSocket && !retried && (e.code === 'ECONNRESET' || e.code === 'EPIPE'))
          return void send(method, url, headers, body, o, true).then(resolve, reject);
        reject(new AppError('OFFLINE', `${method} ${u.host}: ${e.message}`, { cause: e }));
      });
      req.end(body ?? undefined);
    });
  }

  /** HTTP errors as AppErrors; the body of a refused request is read away so the socket is reused. */
  async function checked(res: http.IncomingMessage, what: string): Promise<http.IncomingMessage> {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    res.resume();
    throw new AppError('STORAGE_UNAVAILABLE', `${what} HTTP ${status}`, { retryable: status >= 500 || status === 429 });
  }

  const announced = (res: http.IncomingMessage) => {
    const n = Number(res.headers['content-length']);
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  };
  const shortBody = (what: string, got: number, want: number) =>
    new AppError('STORAGE_UNAVAILABLE', `${what}: got ${got} of ${want} bytes`, { retryable: true });
  /** A response stream that fails mid-body (reset, timeout) is a network failure. */
  const bodyError = (what: string, e: unknown) =>
    AppError.is(e) ? e : new AppError('OFFLINE', `${what}: ${(e as Error).message}`, { cause: e });

  return {
    /** PUT `body` to a presigned URL with the headers it was signed with. */
    async put(url: string, headers: Record<string, string>, body: Uint8Array, o: TransferOptions = {}): Promise<void> {
      const res = await checked(await send('PUT', url, headers, body, o), 'upload');
      res.resume();
      await new Promise<void>((resolve, reject) => {
        res.once('end', resolve);
        res.once('error', (e) => reject(bodyError('upload', e)));
      });
    },

    /** GET a (small) object into memory: one buffer, sized by content-length when it is given. */
    async get(url: string, o: TransferOptions = {}): Promise<Buffer> {
      const res = await checked(await send('GET', url, {}, null, o), 'download');
      const total = announced(res);
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          chunks.push(chunk);
          size += chunk.length;
        }
      } catch (e) {
        throw bodyError('download', e);
      }
      if (total !== null && size !== total) throw shortBody('download', size, total);
      return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    },

    /**
     * GET an object into `file` (created new; removed again on any failure), hashing the bytes as
     * they arrive and writing them in large batches. Never leaves a partial file behind.
     */
    async getToFile(url: string, file: string, o: FileDownloadOptions = {}): Promise<ReceivedFile> {
      const res = await checked(await send('GET', url, {}, null, o), 'download');
      const total = announced(res);
      const hash = createHash('sha256');
      let fh: Awaited<ReturnType<typeof open>> | null = null;
      let created = false;
      let size = 0;
      try {
        fh = await open(file, 'wx', 0o644);
        created = true;
        let batch: Buffer[] = [];
        let batched = 0;
        try {
          for await (const chunk of res as AsyncIterable<Buffer>) {
            hash.update(chunk);
            batch.push(chunk);
            batched += chunk.length;
            size += chunk.length;
            o.onProgress?.(size, total);
            if (batched >= WRITE_BATCH) {
              await fh.writev(batch);
              batch = [];
              batched = 0;
            }
          }
        } catch (e) {
          throw bodyError('download', e);
        }
        if (total !== null && size !== total) throw shortBody('download', size, total);
        if (batch.length > 0) await fh.writev(batch);
        if (o.fsync) await fh.sync();
        await fh.close();
        fh = null;
        return { size, sha256: hash.digest('hex') };
      } catch (e) {
        res.destroy();
        await fh?.close().catch(() => undefined);
        // Only a file this call created ('wx' failing means someone else's file is there).
        if (created) await rm(file, { force: true });
        if (!created && !AppError.is(e))
          throw new AppError('INTERNAL', `cannot write ${file}: ${(e as Error).message}`, { cause: e });
        throw e;
      }
    },

    /** Closes idle keep-alive sockets (the app is quitting or the account changed). */
    close(): void {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
