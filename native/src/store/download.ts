import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '@atelier/common';

export interface DownloadProgress {
  /** The file being fetched (manifest-relative path) and its position in the download. */
  file: string;
  fileIndex: number;
  fileCount: number;
  /** Bytes of this file on disk so far. */
  fileBytes: number;
  fileTotal: number;
  /** Bytes of every file together, received or already present. */
  receivedBytes: number;
  totalBytes: number;
}

export interface FetchFileOptions {
  url: string;
  dest: string;
  sha256: string;
  size: number;
  signal?: AbortSignal | undefined;
  onBytes?: ((fileBytes: number) => void) | undefined;
  /** Reconnect attempts after a dropped connection, each resuming from the bytes on disk. Default 5. */
  retries?: number | undefined;
}

/**
 * Downloads one file to `dest` through `dest + '.part'`, resuming with an HTTP Range request from
 * the part's size (after a dropped connection, a cancel or a restart), then checks size and
 * sha256 before renaming it into place. A mismatch deletes the part: its bytes cannot be trusted.
 */
export async function fetchFile(o: FetchFileOptions): Promise<void> {
  const part = `${o.dest}.part`;
  await mkdir(path.dirname(o.dest), { recursive: true });
  const retries = o.retries ?? 5;
  let attempt = 0;
  for (;;) {
    throwIfAborted(o.signal);
    try {
      await fetchOnce(o, part);
      break;
    } catch (e) {
      if (AppError.is(e) && e.code !== 'DOWNLOAD_FAILED') throw e;
      if (o.signal?.aborted) throw canceled();
      attempt += 1;
      if (attempt > retries) throw AppError.is(e) ? e : downloadFailed(o.url, e);
      await sleep(Math.min(2000, 100 * 2 ** attempt), undefined, { signal: o.signal }).catch(() => undefined);
    }
  }
  const actual = await sha256OfFile(part);
  const { size } = await stat(part);
  if (size !== o.size || actual !== o.sha256.toLowerCase()) {
    await rm(part, { force: true });
    throw new AppError(
      'CHECKSUM_MISMATCH',
      `${path.basename(o.dest)}: expected sha256 ${o.sha256} (${o.size} bytes), got ${actual} (${size} bytes)`,
      { details: { url: o.url, expected: o.sha256, actual, size } },
    );
  }
  await rename(part, o.dest);
}

async function fetchOnce(o: FetchFileOptions, part: string): Promise<void> {
  let have = await sizeOf(part);
  if (have > o.size) {
    await rm(part, { force: true });
    have = 0;
  }
  if (have === o.size && o.size > 0) return;
  const headers: Record<string, string> = {};
  if (have > 0) headers.range = `bytes=${have}-`;
  let res: Response;
  try {
    res = await fetch(o.url, { headers, signal: o.signal ?? null, redirect: 'follow' });
  } catch (e) {
    if (o.signal?.aborted) throw canceled();
    throw downloadFailed(o.url, e);
  }
  if (res.status === 416 && have > 0) {
    // The server says the part already covers the file: let the checksum decide.
    await res.body?.cancel();
    return;
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel();
    const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    throw new AppError(retryable ? 'DOWNLOAD_FAILED' : 'NOT_FOUND', `GET ${redact(o.url)} answered ${res.status}`, {
      ...(retryable ? {} : { userMessage: `The download URL answered HTTP ${res.status}. Check the URL.` }),
      details: { status: res.status },
    });
  }
  // A 200 to a Range request means the server ignores ranges: start the file over.
  const append = res.status === 206 && have > 0;
  if (res.status === 206 && have > 0) {
    const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
    if (start !== undefined && Number(start) !== have) {
      await res.body?.cancel();
      await rm(part, { force: true });
      throw downloadFailed(o.url, new Error(`server resumed at byte ${start}, expected ${have}`));
    }
  }
  const fh = await open(part, append ? 'a' : 'w');
  let written = append ? have : 0;
  try {
    if (!res.body) throw downloadFailed(o.url, new Error('empty response body'));
    for await (const chunk of res.body) {
      await fh.write(chunk);
      written += chunk.byteLength;
      o.onBytes?.(written);
      if (written > o.size) throw new AppError('CHECKSUM_MISMATCH', `${redact(o.url)} is larger than ${o.size} bytes`);
    }
  } catch (e) {
    if (AppError.is(e)) {
      if (e.code === 'CHECKSUM_MISMATCH') await rm(part, { force: true });
      throw e;
    }
    if (o.signal?.aborted) throw canceled();
    throw downloadFailed(o.url, e);
  } finally {
    await fh.close();
  }
  if (written < o.size) throw downloadFailed(o.url, new Error(`connection closed after ${written} of ${o.size} bytes`));
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function sha256OfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw canceled();
}

export function canceled(): AppError {
  return new AppError('CANCELED', 'Download canceled', {
    userMessage: 'The download was canceled. Run it again to resume where it stopped.',
  });
}

function downloadFailed(url: string, cause: unknown): AppError {
  const why =
    cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause);
  return new AppError('DOWNLOAD_FAILED', `GET ${redact(url)} failed: ${why}`, { cause });
}

/** URLs may carry signed query strings: keep them out of messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<invalid url>';
  }
}
