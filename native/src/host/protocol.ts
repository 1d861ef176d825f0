/**
 * The engine host's message protocol. Every message is plain structured-clonable data (the
 * images travel as ArrayBuffers, transferred where the transport can), so the same messages
 * cross a worker_threads MessagePort in Node and Electron's utilityProcess parentPort unchanged.
 *
 * The caller numbers its requests; every reply names the request it answers. A request gets
 * any number of `progress` replies and then exactly one `result` or `error`.
 */
import type { AppErrorJson, ResolvedGenerateRequest } from '@atelier/common';

export interface SessionConfig {
  /** onnxruntime execution provider, e.g. 'cpu' or 'cuda'. */
  provider: string;
  /** Intra-op threads. */
  threads: number;
  /** Optimised-graph cache root; absent disables the cache. */
  cacheDir?: string | undefined;
  /** Intra-op threads busy-wait between operators (see providers/session.ts); default off. */
  spinning?: boolean | undefined;
}

/** What the caller already knows about a model (from the store), so the engine need not re-hash it. */
export interface KnownModel {
  id?: string | undefined;
  hash?: string | undefined;
}

export type HostRequest =
  | { type: 'providers'; id: number }
  | { type: 'load'; id: number; modelDir: string; session: SessionConfig; known?: KnownModel | undefined }
  | {
      type: 'generate';
      id: number;
      modelDir: string;
      session: SessionConfig;
      known?: KnownModel | undefined;
      request: ResolvedGenerateRequest;
      /** The bytes (PNG or JPEG) of the images `request.initImage` and `request.mask` name. */
      inputs?: { initImage?: Uint8Array | undefined; mask?: Uint8Array | undefined } | undefined;
      preview: boolean;
      /** Memory the job may use (Unit: bytes); absent means what the machine has free. */
      memoryLimitBytes?: number | undefined;
    }
  /** Aborts the request numbered `target`; answered like any request once the target has stopped. */
  | { type: 'cancel'; id: number; target: number }
  /** Releases one model's sessions (or every model's when `modelDir` is absent). */
  | { type: 'dispose'; id: number; modelDir?: string | undefined };

export type HostReply =
  | { type: 'progress'; id: number; event: WireProgressEvent }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: AppErrorJson };

export interface WireProgressEvent {
  imageIndex: number;
  step: number;
  total: number;
  elapsedMs: number;
  preview?: { width: number; height: number; png: Uint8Array } | undefined;
  /** Present while a large image is decoded in tiles: 1-based tile just decoded, of `tiles`. */
  decode?: { tile: number; tiles: number } | undefined;
}

export interface LoadedModelInfo {
  id: string;
  dir: string;
  hash: string;
  provider: string;
  /** Unit: ms, wall time of this load (0 when the model was already loaded). */
  loadMs: number;
  /** How many of the model's sessions came from the optimised-graph cache. */
  cachedSessions: number;
}

/**
 * One end of a message channel. `transfer` lists ArrayBuffers the sender gives up; transports
 * that cannot transfer (Electron's parentPort) copy them instead, which is still correct.
 */
export interface Endpoint<In, Out> {
  post(message: Out, transfer?: ArrayBuffer[]): void;
  /** Subscribes to incoming messages; returns the unsubscribe function. */
  listen(handler: (message: In) => void): () => void;
}

export function isHostRequest(value: unknown): value is HostRequest {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { type?: unknown; id?: unknown };
  return (
    typeof v.id === 'number' &&
    (v.type === 'providers' ||
      v.type === 'load' ||
      v.type === 'generate' ||
      v.type === 'cancel' ||
      v.type === 'dispose')
  );
}

/** Collects the distinct ArrayBuffers under `value`'s Uint8Arrays, copying views that do not own their whole buffer. */
export function prepareTransfer<T>(value: T): { value: T; transfer: ArrayBuffer[] } {
  const transfer = new Set<ArrayBuffer>();
  const walk = (v: unknown): unknown => {
    if (v instanceof Uint8Array) {
      let own = v;
      // Node Buffers often live in a shared pool: transferring that pool would break other Buffers.
      if (
        !(v.buffer instanceof ArrayBuffer) ||
        v.byteOffset !== 0 ||
        v.byteLength !== v.buffer.byteLength ||
        transfer.has(v.buffer)
      ) {
        own = new Uint8Array(v);
      }
      transfer.add(own.buffer as ArrayBuffer);
      return own;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x);
      return out;
    }
    return v;
  };
  const out = walk(value) as T;
  return { value: out, transfer: [...transfer] };
}
