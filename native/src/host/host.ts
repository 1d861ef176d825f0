import { Worker, type WorkerOptions } from 'node:worker_threads';
import {
  AppError,
  GenerateRequest,
  parseOrThrow,
  randomSeed,
  type GenerateRequestInput,
  type ResolvedGenerateRequest,
} from '@atelier/common';
import type { GenerationResult } from '../pipeline/diffusion-model.ts';
import { readModelCard } from '../model/model-card.ts';
import { imageSize, requestSide } from '../pipeline/input-image.ts';
import { bestProvider, isProviderName, type ProviderReport } from '../providers/detect.ts';
import { resolveThreads } from '../providers/threads.ts';
import type { ModelEntry, ModelStore } from '../store/store.ts';
import type {
  Endpoint,
  HostReply,
  HostRequest,
  KnownModel,
  LoadedModelInfo,
  SessionConfig,
  WireProgressEvent,
} from './protocol.ts';

/** What a generation returns: the engine's GenerationResult, as it arrives over the protocol. */
export type HostGenerationResult = GenerationResult;

export interface HostGenerateOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((e: WireProgressEvent) => void) | undefined;
  /** Decode a low-resolution preview with each progress event. */
  preview?: boolean | undefined;
  /** Execution provider for this call; default the host's. */
  provider?: string | undefined;
  /** Memory the job may use (Unit: bytes); default the host's limit, else what the machine has free. */
  memoryLimitBytes?: number | undefined;
  /**
   * The bytes (PNG or JPEG) of the starting image and mask the request names. A request with a
   * starting image and no width/height is made at the starting image's size (to a multiple of 8).
   */
  inputs?: { initImage?: Uint8Array | undefined; mask?: Uint8Array | undefined } | undefined;
}

export interface EngineHost {
  /** Execution providers as the engine process sees them (detected once, then cached). */
  providers(): Promise<ProviderReport[]>;
  /** The provider requests run on when they do not name one. */
  defaultProvider(): Promise<string>;
  /** Loads a model ahead of use; later generations reuse its sessions. */
  load(model?: string, opts?: { provider?: string }): Promise<LoadedModelInfo>;
  /**
   * Generates off-thread. `model` is a store id or a folder path; absent means `req.model`, else
   * the store's default. The seed is drawn here when the request has none, so it is reported.
   */
  generate(
    model: string | undefined,
    req: GenerateRequestInput,
    opts?: HostGenerateOptions,
  ): Promise<HostGenerationResult & { request: ResolvedGenerateRequest; model: LoadedModelInfo }>;
  /** Releases one model's sessions, or all. */
  dispose(model?: string): Promise<void>;
  /** Stops the engine process; pending calls reject with ENGINE_FAILED. */
  close(): Promise<void>;
}

/** A running engine process behind an Endpoint: a worker thread here, a utilityProcess in Electron. */
export interface EngineProcess {
  endpoint: Endpoint<HostReply, HostRequest>;
  /** Called once if the process dies on its own. */
  onExit(cb: (reason: string) => void): void;
  terminate(): Promise<void>;
}

export interface EngineHostOptions {
  /** Resolves model ids and supplies the default model. Without it, `model` must be a folder path. */
  store?: ModelStore | undefined;
  /** 'auto' (default) takes the best usable provider. */
  provider?: string | undefined;
  /** Intra-op threads; default physical cores. */
  threads?: number | undefined;
  /** Optimised-graph cache root; absent disables it. */
  cacheDir?: string | undefined;
  /** Let intra-op threads busy-wait (faster on a dedicated machine, e.g. a GPU worker); default off. */
  spinning?: boolean | undefined;
  /**
   * Memory a job may use (Unit: bytes); default what the machine has free when the job starts.
   * A job estimated above it is refused with ENGINE_MEMORY_INSUFFICIENT before any work.
   */
  memoryLimitBytes?: number | undefined;
  /** Starts the engine process; default a worker thread running ./worker.ts. */
  spawn?: (() => EngineProcess) | undefined;
}

/** Spawns ./worker.ts (or `entry`) in a worker_threads Worker and adapts its port to an Endpoint. */
export function spawnWorkerThread(
  entry: URL | string = new URL('./worker.ts', import.meta.url),
  options?: WorkerOptions,
): EngineProcess {
  const worker = new Worker(entry, options);
  let exitCb: ((reason: string) => void) | undefined;
  let exited = false;
  const exit = (reason: string) => {
    if (exited) return;
    exited = true;
    exitCb?.(reason);
  };
  worker.on('error', (e) => exit(`the engine thread crashed: ${e.message}`));
  worker.on('exit', (code) => exit(`the engine thread exited with code ${code}`));
  return {
    endpoint: {
      post: (m, transfer) => worker.postMessage(m, transfer ?? []),
      listen: (h) => {
        worker.on('message', h);
        return () => worker.off('message', h);
      },
    },
    onExit: (cb) => {
      exitCb = cb;
    },
    terminate: async () => {
      exited = true;
      await worker.terminate();
    },
  };
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: AppError): void;
  onProgress?: ((e: WireProgressEvent) => void) | undefined;
}

export function createEngineHost(opts: EngineHostOptions = {}): EngineHost {
  const threads = resolveThreads(opts.threads);
  const spawn = opts.spawn ?? spawnWorkerThread;
  let proc: EngineProcess | undefined;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  let providerCache: Promise<ProviderReport[]> | undefined;
  let closed = false;

  function ensure(): EngineProcess {
    if (closed) throw new AppError('ENGINE_FAILED', 'The engine host is closed');
    if (proc) return proc;
    const p = spawn();
    p.endpoint.listen((msg) => {
      const entry = pending.get(msg.id);
      if (!entry) return;
      if (msg.type === 'progress') entry.onProgress?.(msg.event);
      else {
        pending.delete(msg.id);
        if (msg.type === 'result') entry.resolve(msg.value);
        else entry.reject(AppError.fromJSON(msg.error));
      }
    });
    p.onExit((reason) => {
      if (proc === p) proc = undefined;
      providerCache = undefined;
      const err = new AppError('ENGINE_FAILED', reason);
      for (const [id, entry] of pending) {
        pending.delete(id);
        entry.reject(err);
      }
    });
    proc = p;
    return p;
  }

  function call<T>(
    build: (id: number) => HostRequest,
    onProgress?: (e: WireProgressEvent) => void,
  ): { id: number; done: Promise<T> } {
    const p = ensure();
    const id = nextId++;
    const done = new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
    });
    p.endpoint.post(build(id));
    return { id, done };
  }

  const providers = () => {
    providerCache ??= call<ProviderReport[]>((id) => ({ type: 'providers', id })).done;
    providerCache.catch(() => (providerCache = undefined));
    return providerCache;
  };

  async function chooseProvider(requested: string | undefined): Promise<string> {
    const want = requested ?? opts.provider ?? 'auto';
    const reports = await providers();
    if (want === 'auto') {
      const best = bestProvider(reports);
      if (!best)
        throw new AppError('ENGINE_PROVIDER_UNAVAILABLE', 'No execution provider is usable', {
          userMessage: `No execution provider can run here: ${reports.map((r) => `${r.label}: ${r.reason}`).join('; ')}. Run \`atelier doctor\`.`,
        });
      return best.name;
    }
    if (!isProviderName(want))
      throw new AppError('VALIDATION_FAILED', `Unknown provider "${want}"`, {
        userMessage: `Unknown provider "${want}": use auto, cuda, dml, coreml or cpu.`,
      });
    const r = reports.find((x) => x.name === want)!;
    if (!r.usable)
      throw new AppError('ENGINE_PROVIDER_UNAVAILABLE', `${r.label} is not usable: ${r.reason}`, {
        userMessage: `${r.label} cannot run here: ${r.reason}.`,
        details: { provider: want },
      });
    return want;
  }

  async function resolveModel(model: string | undefined): Promise<ModelEntry | { dir: string; id?: undefined }> {
    if (opts.store) return opts.store.resolve(model);
    if (model === undefined || !/[\\/]/.test(model))
      throw new AppError('ENGINE_MODEL_NOT_FOUND', 'No model store is configured; pass a model folder path', {
        userMessage: 'Pass the model as a folder path.',
      });
    return { dir: model };
  }

  const session = (provider: string): SessionConfig => ({
    provider,
    threads,
    cacheDir: opts.cacheDir,
    spinning: opts.spinning,
  });

  return {
    providers,
    defaultProvider: () => chooseProvider(undefined),

    async load(model, lo = {}) {
      const entry = await resolveModel(model);
      const provider = await chooseProvider(lo.provider);
      return call<LoadedModelInfo>((id) => ({ type: 'load', id, modelDir: entry.dir, session: session(provider) }))
        .done;
    },

    async generate(model, req, go = {}) {
      const parsed = parseOrThrow(GenerateRequest, req);
      const entry = await resolveModel(model ?? parsed.model);
      const provider = await chooseProvider(go.provider);
      // A size the request leaves out is the model's native size when its atelier.json declares one
      // (the demo model draws at 64×64), else the schema's default.
      // With a starting image, its own size (to a multiple of 8) comes before the model's.
      const startSize = go.inputs?.initImage && parsed.initImage !== undefined ? imageSize(go.inputs.initImage) : null;
      const native = startSize
        ? { width: requestSide(startSize.width), height: requestSide(startSize.height) }
        : ('card' in entry ? entry.card : await readModelCard(entry.dir)).nativeSize;
      const resolved: ResolvedGenerateRequest = {
        ...parsed,
        ...(native && req.width === undefined ? { width: native.width } : {}),
        ...(native && req.height === undefined ? { height: native.height } : {}),
        seed: parsed.seed ?? randomSeed(),
        model: entry.id ?? parsed.model ?? toId(entry.dir),
      };
      if (go.signal?.aborted) throw new AppError('CANCELED');
      const loaded = await call<LoadedModelInfo>((id) => ({
        type: 'load',
        id,
        modelDir: entry.dir,
        session: session(provider),
        known: knownOf(entry),
      })).done;
      if (go.signal?.aborted) throw new AppError('CANCELED');
      const { id, done } = call<HostGenerationResult>(
        (rid) => ({
          type: 'generate',
          id: rid,
          modelDir: entry.dir,
          session: session(provider),
          known: knownOf(entry),
          request: resolved,
          ...(go.inputs ? { inputs: go.inputs } : {}),
          preview: go.preview ?? false,
          memoryLimitBytes: go.memoryLimitBytes ?? opts.memoryLimitBytes,
        }),
        go.onProgress,
      );
      const onAbort = () => {
        if (pending.has(id))
          call<boolean>((cid) => ({ type: 'cancel', id: cid, target: id })).done.catch(() => undefined);
      };
      go.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const result = await done;
        return { ...result, request: resolved, model: loaded };
      } finally {
        go.signal?.removeEventListener('abort', onAbort);
      }
    },

    async dispose(model) {
      const dir = model === undefined ? undefined : (await resolveModel(model)).dir;
      if (!proc) return;
      await call<number>((id) => ({ type: 'dispose', id, modelDir: dir })).done;
    },

    async close() {
      if (closed) return;
      const p = proc;
      if (p) {
        await call<number>((id) => ({ type: 'dispose', id })).done.catch(() => undefined);
      }
      closed = true;
      proc = undefined;
      await p?.terminate();
      const err = new AppError('ENGINE_FAILED', 'The engine host was closed');
      for (const [id, entry] of pending) {
        pending.delete(id);
        entry.reject(err);
      }
    },
  };
}

function knownOf(entry: ModelEntry | { dir: string; id?: undefined }): KnownModel {
  return 'sha256' in entry ? { id: entry.id, hash: entry.sha256 } : {};
}

function toId(dir: string): string {
  const base = dir.split(/[\\/]/).filter(Boolean).at(-1) ?? 'model';
  return (
    base
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '') || 'model'
  );
}
