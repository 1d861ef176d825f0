/**
 * Adapts @atelier/engine's engine host and model store to the services' ports. Inference runs
 * off the caller's event loop: the host is a worker thread in the browser host and a
 * utilityProcess in Electron (the caller passes `spawn`).
 */
import { AppError } from '@atelier/common';
import type { EngineHost } from '@atelier/engine/host/host';
import type { ModelEntry, ModelStore } from '@atelier/engine/store/store';
import type { EnginePort, InstalledModelValue, ModelDownloadValue, ModelStorePort } from './engine.ts';

export function engineHostPort(host: EngineHost, threads: () => number): EnginePort {
  return {
    async providers() {
      const reports = await host.providers();
      return {
        providers: reports.map((r) => ({
          name: r.name,
          usable: r.usable,
          gpu: r.gpu,
          reason: r.usable ? null : r.reason,
        })),
        threads: threads(),
      };
    },
    async generate(request, { signal, onProgress }) {
      // The engine's request schema is strict: the folder goes in its own argument.
      const { modelPath, ...req } = request;
      const r = await host.generate(modelPath, req, {
        signal,
        preview: true,
        onProgress: (e) => {
          // The engine counts steps per image; the queue shows the whole batch.
          const preview = e.preview
            ? `data:image/png;base64,${Buffer.from(e.preview.png).toString('base64')}`
            : undefined;
          onProgress({
            step: e.imageIndex * e.total + e.step,
            total: e.total * request.count,
            ...(preview ? { preview } : {}),
          });
        },
      });
      return { images: r.images.map((i) => ({ png: i.png, seed: i.seed, metadata: i.metadata })) };
    },
    close: () => host.close(),
  };
}

const toInstalled = (m: ModelEntry): InstalledModelValue => ({
  id: m.id,
  name: m.name,
  path: m.dir,
  sizeBytes: m.size,
  sha256: m.sha256,
  isDefault: m.isDefault,
  description: m.card.description,
  nativeSize: m.card.nativeSize,
  vocabulary: m.card.vocabulary,
  examples: m.card.examples,
});

/** Downloads are tracked here (the store itself only reports bytes), so the UI can list and cancel them. */
export function modelStorePort(store: ModelStore): ModelStorePort {
  const downloads = new Map<string, { state: ModelDownloadValue; ac: AbortController }>();
  let n = 0;
  // A store scan takes hundreds of ms and stalls the event loop for a good part of it (measured:
  // 350–800 ms per list() on the fixtures), and the router and queue ask on every submit. Cache
  // the list; every change made through this port invalidates it, and it expires after a minute
  // so folders changed behind the app's back still show up.
  let cached: { at: number; list: Promise<InstalledModelValue[]> } | null = null;
  const invalidate = () => (cached = null);
  const list = () => {
    if (!cached || Date.now() - cached.at > 60_000) {
      const p = store.list().then((l) => l.map(toInstalled));
      p.catch(invalidate);
      cached = { at: Date.now(), list: p };
    }
    return cached.list;
  };
  return {
    list,
    import: async (p, mode) => {
      try {
        return toInstalled(await store.importFolder(p, { link: mode === 'link' }));
      } finally {
        invalidate();
      }
    },
    async download(input, onProgress) {
      const id = `dl_${Date.now().toString(36)}_${n++}`;
      const ac = new AbortController();
      const d: ModelDownloadValue = { id, url: input.url, received: 0, total: null, state: 'downloading', error: null };
      downloads.set(id, { state: d, ac });
      const update = (patch: Partial<ModelDownloadValue>) => {
        Object.assign(d, patch);
        onProgress({ ...d });
      };
      onProgress({ ...d });
      // Runs in the background: the caller gets the download's id now and progress as events.
      store
        .download(input.url, {
          ...(input.sha256 ? { sha256: input.sha256 } : {}),
          ...(input.name ? { id: input.name } : {}),
          signal: ac.signal,
          onProgress: (p) => update({ received: p.receivedBytes, total: p.totalBytes }),
        })
        .then(
          () => {
            invalidate();
            update({ state: 'done' });
          },
          (e: unknown) =>
            update(
              ac.signal.aborted
                ? { state: 'canceled' }
                : {
                    state: 'failed',
                    error: e instanceof AppError ? e.userMessage : String((e as Error)?.message ?? e),
                  },
            ),
        );
      return { ...d };
    },
    downloads: () => [...downloads.values()].map((x) => ({ ...x.state })),
    async cancelDownload(id) {
      const d = downloads.get(id);
      if (!d) throw new AppError('NOT_FOUND', `download ${id} not found`);
      d.ac.abort();
    },
    remove: async (id) => {
      try {
        await store.remove(id);
      } finally {
        invalidate();
      }
    },
  };
}
