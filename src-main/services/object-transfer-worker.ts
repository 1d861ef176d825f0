/**
 * The worker thread behind `createThreadedObjectTransfer` (object-transfer-thread.ts): runs the
 * node:http transfers here, so their buffers, hashing and file writes never touch the main
 * thread's heap or event loop (decision 0162). One message in per call, one reply out (plus
 * progress for downloads that asked for it).
 */
import { AppError } from '@atelier/common/errors';
import { parentPort } from 'node:worker_threads';
import { createObjectTransfer } from './object-transfer.ts';
import type { TransferReply, TransferRequest } from './object-transfer-thread.ts';

const port = parentPort;
if (!port) throw new Error('object-transfer-worker.ts runs as a worker thread');
const transfer = createObjectTransfer();
const timeout = (m: { timeoutMs?: number | undefined }) =>
  m.timeoutMs === undefined ? {} : { timeoutMs: m.timeoutMs };
const reply = (m: TransferReply, transferList: ArrayBuffer[] = []) => port.postMessage(m, transferList);

port.on('message', (m: TransferRequest) => {
  void (async () => {
    try {
      switch (m.op) {
        case 'put':
          await transfer.put(m.url, m.headers, m.body, timeout(m));
          return reply({ id: m.id, ok: true, value: null });
        case 'putFile':
          await transfer.putFile(m.url, m.headers, m.file, m.expect, timeout(m));
          return reply({ id: m.id, ok: true, value: null });
        case 'get': {
          const buf = await transfer.get(m.url, timeout(m));
          // Handed over, not copied, when the bytes own their whole ArrayBuffer.
          const own =
            buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength
              ? (buf.buffer as ArrayBuffer)
              : new Uint8Array(buf).buffer;
          return reply({ id: m.id, ok: true, value: own }, [own]);
        }
        case 'getToFile': {
          let last = 0;
          const value = await transfer.getToFile(m.url, m.file, {
            ...(m.fsync ? { fsync: true } : {}),
            ...timeout(m),
            // At most ten progress messages a second.
            ...(m.progress
              ? {
                  onProgress: (received: number, total: number | null) => {
                    const now = Date.now();
                    if (now - last < 100 && received !== total) return;
                    last = now;
                    reply({ id: m.id, progress: [received, total] });
                  },
                }
              : {}),
          });
          return reply({ id: m.id, ok: true, value });
        }
      }
    } catch (e) {
      const err = AppError.is(e) ? e : new AppError('INTERNAL', (e as Error)?.message ?? String(e));
      reply({ id: m.id, ok: false, error: err.toJSON() });
    }
  })();
});
