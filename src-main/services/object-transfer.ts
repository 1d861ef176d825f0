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
import { AppError } from '@atelier/common/errors';
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

/**
 * Buffers for the bytes of files going up and coming down, reused: a fresh megabyte costs more to
 * fault in than to fill (measured here: 0.30 ms to allocate 1 MB, 0.06 ms to read a cached 1 MB
 * file into a reused one). Bounded, and given back to the system once transfers pause: a desktop
 * app must not keep a sync's working set for the rest of the day.
 */
const spare: Buffer[] = [];
/** Unit: bytes kept in `spare` at most. */
const SPARE_LIMIT = 48 * 1024 * 1024;
/** Unit: ms without a transfer after which the spare buffers are dropped. */
const SPARE_IDLE_MS = 10_000;
let spareBytes = 0;
let inUse = 0;
let trimTimer: NodeJS.Timeout | null = null;
function takeBuffer(size: number): Buffer {
  inUse++;
  if (trimTimer) clearTimeout(trimTimer);
  trimTimer = null;
  const i = spare.findIndex((b) => b.length > size);
  if (i >= 0) {
    const b = spare.splice(i, 1)[0]!;
    spareBytes -= b.length;
    return b;
  }
  return Buffer.allocUnsafeSlow(Math.max(size + 1, 2 * 1024 * 1024));
}
function releaseBuffer(b: Buffer): void {
  inUse--;
  if (spareBytes + b.length <= SPARE_LIMIT) {
    spare.push(b);
    spareBytes += b.length;
  }
  if (inUse === 0 && !trimTimer) {
    trimTimer = setTimeout(() => {
      trimTimer = null;
      if (inUse > 0) return;
      spare.length = 0;
      spareBytes = 0;
    }, SPARE_IDLE_MS);
    trimTimer.unref();
  }
}

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

  /**
   * Feeds each chunk of a response body to `onChunk` until it ends ('data' events, not async
   * iteration: no promise per chunk, which bench:sync's profile showed). `onChunk` may return a
   * promise to hold the stream until it settles (a file write). Rejects when the body is cut.
   */
  function readBody(
    res: http.IncomingMessage,
    what: string,
    onChunk: (chunk: Buffer) => Promise<unknown> | void,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let held: Promise<unknown> = Promise.resolve();
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        res.destroy();
        reject(bodyError(what, e));
      };
      res.on('data', (chunk: Buffer) => {
        const wait = onChunk(chunk);
        if (wait) {
          res.pause();
          held = wait.then(() => res.resume(), fail);
        }
      });
      res.once('end', () => void held.then(() => !failed && resolve(), fail));
      res.once('error', fail);
      res.once('close', () => {
        if (!res.complete) fail(new Error('the connection closed before the whole body arrived'));
      });
    });
  }

  /** PUT `body` to a presigned URL with the headers it was signed with. */
  async function put(url: string, headers: Record<string, string>, body: Uint8Array, o: TransferOptions = {}) {
    const res = await checked(await send('PUT', url, headers, body, o), 'upload');
    res.resume();
    await new Promise<void>((resolve, reject) => {
      res.once('end', resolve);
      res.once('error', (e) => reject(bodyError('upload', e)));
    });
  }

  return {
    put,

    /**
     * PUT a file that must be exactly `expect` (the size and SHA-256 its reservation declared): read
     * into a reused buffer and checked before a byte is sent; a file changed since it was saved is
     * refused with BAD_REQUEST and nothing goes up.
     */
    async putFile(
      url: string,
      headers: Record<string, string>,
      file: string,
      expect: { size: number; sha256: string },
      o: TransferOptions = {},
    ): Promise<void> {
      const buf = takeBuffer(expect.size);
      try {
        const fh = await open(file, 'r');
        let n = 0;
        try {
          // Up to one byte more than declared: a file that grew is seen as changed.
          const limit = expect.size + 1;
          while (n < limit) {
            const { bytesRead } = await fh.read(buf, n, limit - n, n);
            if (bytesRead === 0) break;
            n += bytesRead;
          }
        } finally {
          await fh.close();
        }
        const body = buf.subarray(0, n);
        if (n !== expect.size || createHash('sha256').update(body).digest('hex') !== expect.sha256)
          throw new AppError('BAD_REQUEST', `${file} changed on disk since it was saved`);
        await put(url, headers, body, o);
      } finally {
        releaseBuffer(buf);
      }
    },

    /** GET a (small) object into memory: one buffer, sized by content-length when it is given. */
    async get(url: string, o: TransferOptions = {}): Promise<Buffer> {
      const res = await checked(await send('GET', url, {}, null, o), 'download');
      const total = announced(res);
      const chunks: Buffer[] = [];
      let size = 0;
      await readBody(res, 'download', (chunk) => {
        chunks.push(chunk);
        size += chunk.length;
      });
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
        const out = fh;
        // Each chunk is copied into a reused buffer and dropped at once, so socket buffers die
        // young (held until a write, they outlived scavenges and cost full GCs: decision 0162).
        const buf = takeBuffer(Math.min(total ?? WRITE_BATCH, WRITE_BATCH));
        let filled = 0;
        try {
          await readBody(res, 'download', (chunk) => {
            hash.update(chunk);
            size += chunk.length;
            o.onProgress?.(size, total);
            let from = 0;
            while (from < chunk.length) {
              const n = chunk.copy(buf, filled, from);
              from += n;
              filled += n;
              if (filled === buf.length && from < chunk.length) return flushThen(chunk.subarray(from));
            }
            return undefined;
          });
          if (total !== null && size !== total) throw shortBody('download', size, total);
          await writeAll(buf, filled);
        } finally {
          releaseBuffer(buf);
        }
        /** The buffer is full: write it, then take in the rest of the chunk (the stream waits). */
        async function flushThen(rest: Buffer): Promise<void> {
          await writeAll(buf, filled);
          filled = 0;
          for (let from = 0; from < rest.length;) {
            const n = rest.copy(buf, filled, from);
            from += n;
            filled += n;
            if (filled === buf.length) {
              await writeAll(buf, filled);
              filled = 0;
            }
          }
        }
        async function writeAll(b: Buffer, n: number): Promise<void> {
          for (let off = 0; off < n;) off += (await out.write(b, off, n - off)).bytesWritten;
        }
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
