import { AppError, type AppErrorJson } from '@atelier/common';
import type { ProviderReport } from '../providers/detect.ts';
import type {
  Endpoint,
  HostReply,
  HostRequest,
  KnownModel,
  LoadedModelInfo,
  SessionConfig,
  WireProgressEvent,
} from './protocol.ts';
import { isHostRequest, prepareTransfer } from './protocol.ts';

/** The slice of the engine's model API the service drives (see native/src/index.ts). */
export interface ServiceModel {
  readonly id: string;
  readonly dir: string;
  readonly hash: string;
  readonly provider: string;
  generate(
    req: Extract<HostRequest, { type: 'generate' }>['request'],
    opts: {
      signal: AbortSignal;
      onProgress: (e: WireProgressEvent) => void;
      preview: boolean;
      memoryLimitBytes?: number;
    },
  ): Promise<unknown>;
  dispose(): Promise<void>;
}

export interface EngineServiceDeps {
  /** Opens a model with long-lived sessions for the given provider and threads. */
  openModel(
    modelDir: string,
    session: SessionConfig,
    known: KnownModel,
  ): Promise<{ model: ServiceModel; cachedSessions: number }>;
  detectProviders(): Promise<ProviderReport[]>;
}

/**
 * The engine side of the host protocol: keeps one loaded model per (folder, provider, threads)
 * for the life of the process, runs requests, forwards progress, and turns every failure into
 * an AppError's JSON. Transport-agnostic: give it any Endpoint.
 */
export function serveEngine(endpoint: Endpoint<unknown, HostReply>, deps: EngineServiceDeps): () => Promise<void> {
  const models = new Map<string, Promise<{ model: ServiceModel; cachedSessions: number }>>();
  const running = new Map<number, AbortController>();
  const key = (dir: string, s: SessionConfig) => `${s.provider}|${s.threads}|${dir}`;

  async function open(
    modelDir: string,
    session: SessionConfig,
    known: KnownModel = {},
  ): Promise<{ model: ServiceModel; info: LoadedModelInfo }> {
    const k = key(modelDir, session);
    let entry = models.get(k);
    const started = performance.now();
    const fresh = entry === undefined;
    if (!entry) {
      entry = deps.openModel(modelDir, session, known);
      models.set(k, entry);
      // A failed load must not poison later attempts.
      entry.catch(() => models.delete(k));
    }
    const { model, cachedSessions } = await entry;
    return {
      model,
      info: {
        id: model.id,
        dir: model.dir,
        hash: model.hash,
        provider: model.provider,
        loadMs: fresh ? performance.now() - started : 0,
        cachedSessions,
      },
    };
  }

  async function handle(msg: HostRequest): Promise<void> {
    switch (msg.type) {
      case 'providers':
        reply({ type: 'result', id: msg.id, value: await deps.detectProviders() });
        return;
      case 'load':
        reply({ type: 'result', id: msg.id, value: (await open(msg.modelDir, msg.session, msg.known)).info });
        return;
      case 'generate': {
        const ac = new AbortController();
        running.set(msg.id, ac);
        try {
          const { model } = await open(msg.modelDir, msg.session, msg.known);
          if (ac.signal.aborted) throw new AppError('CANCELED');
          const result = await model.generate(msg.request, {
            signal: ac.signal,
            ...(msg.inputs ? { inputs: msg.inputs } : {}),
            preview: msg.preview,
            ...(msg.memoryLimitBytes !== undefined ? { memoryLimitBytes: msg.memoryLimitBytes } : {}),
            onProgress: (event) => {
              const p = prepareTransfer(event);
              endpoint.post({ type: 'progress', id: msg.id, event: p.value }, p.transfer);
            },
          });
          const p = prepareTransfer(result);
          endpoint.post({ type: 'result', id: msg.id, value: p.value }, p.transfer);
        } finally {
          running.delete(msg.id);
        }
        return;
      }
      case 'cancel':
        running.get(msg.target)?.abort();
        reply({ type: 'result', id: msg.id, value: running.has(msg.target) });
        return;
      case 'dispose': {
        const keys = [...models.keys()].filter((k) => msg.modelDir === undefined || k.endsWith(`|${msg.modelDir}`));
        for (const k of keys) {
          const entry = models.get(k)!;
          models.delete(k);
          await entry.then(({ model }) => model.dispose()).catch(() => undefined);
        }
        reply({ type: 'result', id: msg.id, value: keys.length });
        return;
      }
    }
  }

  function reply(r: HostReply): void {
    endpoint.post(r);
  }

  const unlisten = endpoint.listen((raw) => {
    if (!isHostRequest(raw)) return;
    handle(raw).catch((e: unknown) => reply({ type: 'error', id: raw.id, error: toAppErrorJson(e) }));
  });

  return async () => {
    unlisten();
    for (const ac of running.values()) ac.abort();
    for (const entry of models.values()) await entry.then(({ model }) => model.dispose()).catch(() => undefined);
    models.clear();
  };
}

const OOM =
  /out of memory|bad_alloc|failed to allocate|CUDNN_STATUS_ALLOC_FAILED|CUBLAS_STATUS_ALLOC_FAILED|E_OUTOFMEMORY/i;

/** Any thrown value → the AppError JSON that crosses the boundary. Unexpected errors keep their message for logs. */
export function toAppErrorJson(e: unknown): AppErrorJson {
  if (AppError.is(e)) return e.toJSON();
  const message = e instanceof Error ? e.message : String(e);
  if (OOM.test(message)) return new AppError('ENGINE_OUT_OF_MEMORY', message).toJSON();
  return new AppError('ENGINE_FAILED', message).toJSON();
}
