import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createObjectTransfer } from './object-transfer.ts';
import { createThreadedObjectTransfer } from './object-transfer-thread.ts';

/** A small object server: what a test puts under `objects` is served; PUTs are kept with their headers. */
const objects = new Map<string, Buffer>();
const puts: { path: string; headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
let behaviour: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | null = null;
const server = http.createServer((req, res) => {
  if (behaviour?.(req, res)) return;
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'PUT') {
      puts.push({ path: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { etag: '"x"' }).end();
      return;
    }
    const body = objects.get(req.url!);
    if (!body) return void res.writeHead(404).end('<Error><Code>NoSuchKey</Code></Error>');
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
});
let base = '';
const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-transfer-'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  behaviour = null;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

// The same calls, run in this thread and through the worker thread the app uses (decision 0162).
describe.each([
  ['in this thread', createObjectTransfer],
  ['in a worker thread', createThreadedObjectTransfer],
] as const)('object transfers to presigned URLs, %s', (_where, create) => {
  const transfer = create();
  afterAll(() => transfer.close());

  it('PUTs the exact bytes with the signed headers and the body length', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 7);
    await transfer.put(`${base}/users/u/images/a.png?X-Amz-Signature=s`, { 'content-type': 'image/png' }, body);
    const got = puts.at(-1)!;
    expect(got.path).toBe('/users/u/images/a.png?X-Amz-Signature=s');
    expect(got.headers['content-type']).toBe('image/png');
    expect(got.headers['content-length']).toBe(String(body.length));
    expect(got.headers.authorization).toBeUndefined();
    expect(sha(got.body)).toBe(sha(body));
  });

  it('PUTs a file only while it is exactly what was reserved', async () => {
    const bytes = randomBytes(1_500_000);
    const file = path.join(dir, `put-${_where.length}.png`);
    writeFileSync(file, bytes);
    const sent = puts.length;
    await transfer.putFile(`${base}/users/u/images/f.png`, { 'content-type': 'image/png' }, file, {
      size: bytes.length,
      sha256: sha(bytes),
    });
    expect(puts.length).toBe(sent + 1);
    expect(sha(puts.at(-1)!.body)).toBe(sha(bytes));
    // Changed since it was saved: same size other bytes, or a byte longer. Nothing is sent.
    writeFileSync(file, randomBytes(bytes.length));
    await expect(
      transfer.putFile(`${base}/x`, {}, file, { size: bytes.length, sha256: sha(bytes) }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    writeFileSync(file, Buffer.concat([bytes, Buffer.from([0])]));
    await expect(
      transfer.putFile(`${base}/x`, {}, file, { size: bytes.length, sha256: sha(bytes) }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(puts.length).toBe(sent + 1);
  });

  it('downloads into memory and into a file, hashing exactly the bytes written', async () => {
    const small = randomBytes(200_000);
    const large = randomBytes(9 * 1024 * 1024 + 3); // more than one write batch
    objects.set('/small', small);
    objects.set('/large', large);
    expect(sha(await transfer.get(`${base}/small`))).toBe(sha(small));
    const file = path.join(dir, `large-${_where.length}.png`);
    const seen: number[] = [];
    const got = await transfer.getToFile(`${base}/large`, file, { fsync: true, onProgress: (n) => seen.push(n) });
    expect(got).toEqual({ size: large.length, sha256: sha(large) });
    expect(sha(readFileSync(file))).toBe(sha(large));
    expect(seen.at(-1)).toBe(large.length);
  });

  it('says what went wrong: HTTP errors (retryable or not), a refused connection, a cut body', async () => {
    await expect(transfer.get(`${base}/missing`)).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      retryable: false,
    });
    behaviour = (_req, res) => (res.writeHead(503).end('slow down'), true);
    await expect(transfer.put(`${base}/x`, {}, Buffer.from('x'))).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      retryable: true,
    });
    // A port nothing listens on.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(transfer.get(`http://127.0.0.1:${port}/x`)).rejects.toMatchObject({ code: 'OFFLINE' });
    // The server announces 1 MB and hangs up after half of it: an error, and no file is left.
    behaviour = (_req, res) => {
      res.writeHead(200, { 'content-length': 1_000_000 });
      res.write(randomBytes(500_000), () => res.destroy());
      return true;
    };
    const file = path.join(dir, `cut-${_where.length}.png`);
    await expect(transfer.getToFile(`${base}/cut`, file)).rejects.toMatchObject({ code: 'OFFLINE' });
    expect(existsSync(file)).toBe(false);
    await expect(transfer.get(`${base}/cut`)).rejects.toMatchObject({ code: 'OFFLINE' });
  });

  it('never writes over a file it did not create, and leaves no partial file on an HTTP error', async () => {
    const theirs = path.join(dir, `theirs-${_where.length}.png`);
    writeFileSync(theirs, 'keep me');
    objects.set('/o', randomBytes(1000));
    await expect(transfer.getToFile(`${base}/o`, theirs)).rejects.toThrow();
    expect(readFileSync(theirs, 'utf8')).toBe('keep me');
    const before = readdirSync(dir).length;
    await expect(
      transfer.getToFile(`${base}/missing`, path.join(dir, `nope-${_where.length}.png`)),
    ).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
    });
    expect(readdirSync(dir).length).toBe(before);
  });

  it('sends again on a new socket when the server dropped the kept-alive one as the request went out', async () => {
    objects.set('/k', randomBytes(10));
    // A socket's second request is dropped unanswered, as by a server whose keep-alive timeout
    // ran out at that moment; the request itself never reached the application.
    const served = new WeakSet<object>();
    let dropped = 0;
    behaviour = (req) => {
      if (served.has(req.socket)) {
        dropped++;
        req.socket.destroy();
        return true;
      }
      served.add(req.socket);
      return false;
    };
    await transfer.get(`${base}/k`);
    expect((await transfer.get(`${base}/k`)).length).toBe(10);
    expect(dropped).toBe(1);
  });
});
