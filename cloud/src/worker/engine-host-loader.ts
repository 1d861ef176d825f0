/**
 * Warm models through the engine host: inference runs on a worker thread, so this process's event
 * loop stays free for queue heartbeats, progress writes and S3 uploads while a job denoises.
 * The host keeps one long-lived session set per model folder.
 */
import { createEngineHost } from '@atelier/engine';
import type { EngineHost } from '@atelier/engine';
import type { ModelLoader, WarmModel } from './engine-pool.ts';

export function engineHostLoader(opts: { threads?: number | undefined; provider?: string | undefined } = {}): {
  load: ModelLoader;
  host: EngineHost;
} {
  const host = createEngineHost({
    ...(opts.threads ? { threads: opts.threads } : {}),
    provider: opts.provider ?? 'auto',
  });
  const load: ModelLoader = async (_modelId, modelDir) => {
    await host.load(modelDir);
    const warm: WarmModel = {
      async generate(req, g) {
        const r = await host.generate(modelDir, req, {
          signal: g.signal,
          onProgress: g.onProgress,
          ...(g.inputs ? { inputs: g.inputs } : {}),
        });
        return { images: r.images };
      },
      dispose: () => host.dispose(modelDir),
    };
    return warm;
  };
  return { load, host };
}
