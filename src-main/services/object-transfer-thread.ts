/**
 * Object transfers (object-transfer.ts) run in a worker thread of their own (decision 0162).
 * Measured with bench:sync: moving 564 MB through the main thread's heap triggered a full
 * mark-compact every ~11 MB of socket buffers (V8 counts them as external memory), and marking
 * the app's whole heap each time cost the process more CPU than the bytes (1.75 s of GC threads
 * for one 500-image download). In a worker the same churn meets a heap of a few MB, and the main
 * thread (the app's IPC) stays free while a gallery syncs.
 *
 * Same calls as `createObjectTransfer`; the worker starts on first use, does not keep the process
 * alive, and starts again if it ever dies (its calls in flight fail with a retryable error).
 */
import { AppError, type AppErrorJson } from '@atelier/common';
import { Worker } from 'node:worker_threads';
import type { ReceivedFile } from './object-transfer.ts';

export type TransferRequest = { id: number } & (
  | { op: 'put'; url: string; headers: Record<string, string>; body: Uint8Array; timeoutMs?: number | undefined }
  | {
      op: 'putFile';
      url: string;
      headers: Record<string, string>;
      file: string;
      expect: { size: number; sha256: string };
      timeoutMs?: number | undefined;
    }
  | { op: 'get'; url: string; timeoutMs?: number | undefined }
  | {
      op: 'getToFile';
      url: string;
      file: string;
      fsync?: boolean | undefined;
      progress?: boolean | undefined;
      timeoutMs?: number | undefined;
    }
);

export type TransferReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: AppErrorJson }
  | { id: number; progress: [number, number | null] };

type Pending = {
  resolve: (v: unknown) => void;
  reject: (e: AppError) => void;
  onProgress?: ((received: number, total: number | null) => void) | undefined;
};

/** Unit: MB, the worker's young generation (V8's default is 16 MB or more). */
const YOUNG_MB = 1;

export type ThreadedObjectTransfer = ReturnType<typeof createThreadedObjectTransfer>;

export function createThreadedObjectTransfer(entry: URL = new URL('./object-transfer-worker.ts', import.meta.url)) {
  let worker: Worker | null = null;
  let nextId = 1;
  const pending = new Map<number, Pending>();

  function start(): Worker {
    // A small young generation: socket buffers are external memory that V8 frees at a scavenge;
    // with the default one, scavenges were rare and the buffers piled up until they forced full
    // mark-compacts (20 in one 200-image bench:sync run; 2 with 1 MB; decision 0162).
    const w = new Worker(entry, { resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB } });
    w.unref();
    w.on('message', (m: TransferReply) => {
      const p = pending.get(m.id);
      if (!p) return;
      if ('progress' in m) return p.onProgress?.(...m.progress);
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(AppError.fromJSON(m.error));
    });
    const died = (why: string) => {
      if (worker === w) worker = null;
      for (const [id, p] of pending) {
        pending.delete(id);
        p.reject(new AppError('STORAGE_UNAVAILABLE', `the transfer thread stopped: ${why}`, { retryable: true }));
      }
    };
    w.on('error', (e) => died(e.message));
    w.on('exit', (code) => died(`exit code ${code}`));
    return w;
  }

  /** Distributive, so each request keeps its own fields once the id is left out. */
  type Call<T> = T extends unknown ? Omit<T, 'id'> : never;
  function call<T>(req: Call<TransferRequest>, onProgress?: Pending['onProgress']): Promise<T> {
    worker ??= start();
    const id = nextId++;
    const w = worker;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
      // Bytes to PUT are copied to the worker; they are small (thumbnails, inputs): files go by path.
      w.postMessage({ ...req, id });
    });
  }

  return {
    put: (url: string, headers: Record<string, string>, body: Uint8Array, o: { timeoutMs?: number } = {}) =>
      call<void>({ op: 'put', url, headers, body, timeoutMs: o.timeoutMs }),
    putFile: (
      url: string,
      headers: Record<string, string>,
      file: string,
      expect: { size: number; sha256: string },
      o: { timeoutMs?: number } = {},
    ) => call<void>({ op: 'putFile', url, headers, file, expect, timeoutMs: o.timeoutMs }),
    get: async (url: string, o: { timeoutMs?: number } = {}) =>
      Buffer.from(await call<ArrayBuffer>({ op: 'get', url, timeoutMs: o.timeoutMs })),
    getToFile: (
      url: string,
      file: string,
      o: {
        fsync?: boolean;
        timeoutMs?: number;
        onProgress?: (received: number, total: number | null) => void;
      } = {},
    ) =>
      call<ReceivedFile>(
        { op: 'getToFile', url, file, fsync: o.fsync, timeoutMs: o.timeoutMs, progress: !!o.onProgress },
        o.onProgress,
      ),
    /** Stops the worker (the app is quitting); a later call starts a new one. */
    close(): void {
      const w = worker;
      worker = null;
      void w?.terminate();
    },
  };
}
