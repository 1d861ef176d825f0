/**
 * Adapts @atelier/engine's engine host and model store to the services' ports. Inference runs
 * off the caller's event loop: the host is a worker thread in the browser host and a
 * utilityProcess in Electron (the caller passes `spawn`).
 */
import { AppError, type CatalogueModel, type MemoryEstimate } from '@atelier/common';
import { CATALOGUE, downloadCatalogueModel } from '@atelier/engine/store/catalogue';
import type { EngineHost } from '@atelier/engine/host/host';
import { availableMemory, estimateJob, formatBytes, memoryProfile } from '@atelier/engine/pipeline/memory';
import type { ModelEntry, ModelStore } from '@atelier/engine/store/store';
import type { EnginePort, InstalledModelValue, ModelDownloadValue, ModelStorePort } from './engine.ts';

/** Above this share of the free memory a job runs but the person is warned first. */
const WARN_SHARE = 0.8;

/**
 * The engine's memory check for a job, before it is queued: refuse when the estimate exceeds the
 * memory the engine may use (`limit`, default what the machine has free), warn when it takes
 * most of it. The engine checks again when the job starts, so a refusal here is never the only guard.
 */
export function estimateMemoryFor(
  req: { width: number; height: number; count: number; modelPath: string | null },
  limit: () => number = availableMemory,
): MemoryEstimate {
  const availableBytes = Math.max(0, Math.floor(limit()));
  if (!req.modelPath) return { verdict: 'ok', neededBytes: 0, availableBytes, message: null };
  // Guidance is not known here: assume it is on (a UNet batch of 2), the larger of the two.
  const e = estimateJob(
    memoryProfile(req.modelPath),
    { width: req.width, height: req.height, guidance: 7.5, count: req.count },
    { availableBytes, loaded: false },
  );
  const need = formatBytes(e.requiredBytes);
  const have = formatBytes(availableBytes);
  const size = `${req.width}×${req.height}`;
  const neededBytes = Math.ceil(e.requiredBytes);
  if (!e.fits)
    return {
      verdict: 'refuse',
      neededBytes,
      availableBytes,
      message: `A ${size} image needs about ${need} of memory and this computer has ${have} free. Use a smaller size, close other apps, or run it in the cloud.`,
    };
  if (e.requiredBytes > WARN_SHARE * availableBytes)
    return {
      verdict: 'warn',
      neededBytes,
      availableBytes,
      message: `A ${size} image needs about ${need} of the ${have} free: other apps may slow down while it runs.`,
    };
  return { verdict: 'ok', neededBytes, availableBytes, message: null };
}

export function engineHostPort(
  host: EngineHost,
  threads: () => number,
  opts: { memoryLimitBytes?: number | undefined } = {},
): EnginePort & { estimateMemory: (req: Parameters<typeof estimateMemoryFor>[0]) => Promise<MemoryEstimate> } {
  const limit = () => opts.memoryLimitBytes ?? availableMemory();
  return {
    estimateMemory: async (req) => estimateMemoryFor(req, limit),
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
    async generate(request, { signal, onProgress, inputs }) {
      // The engine's request schema is strict: the folder goes in its own argument.
      const { modelPath, ...req } = request;
      const r = await host.generate(modelPath, req, {
        signal,
        preview: true,
        memoryLimitBytes: opts.memoryLimitBytes,
        inputs,
        onProgress: (e) => {
          // The engine counts steps per image; the queue shows the whole batch.
          const preview = e.preview
            ? `data:image/png;base64,${Buffer.from(e.preview.png).toString('base64')}`
            : undefined;
          onProgress({
            step: e.imageIndex * e.total + e.step,
            total: e.total * request.count,
            image: { index: e.imageIndex + 1, count: request.count },
            ...(e.decode ? { decode: e.decode } : {}),
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
  fixture: m.fixture,
  removable: m.root === 'user',
  description: m.card.description,
  nativeSize: m.card.nativeSize,
  vocabulary: m.card.vocabulary,
  examples: m.card.examples,
});

/** Downloads are tracked here (the store itself only reports bytes), so the UI can list and cancel them. */
export function modelStorePort(
  store: ModelStore,
  opts: { hub?: string } = {},
): ModelStorePort & {
  catalogue(): Promise<CatalogueModel[]>;
  install(catalogueId: string, onProgress: (d: ModelDownloadValue) => void): Promise<ModelDownloadValue>;
} {
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
  /** Tracks a background download the same way for manifest URLs and catalogue entries. */
  function track(
    d: ModelDownloadValue,
    run: (signal: AbortSignal, progress: (received: number, total: number) => void) => Promise<unknown>,
    onProgress: (d: ModelDownloadValue) => void,
  ): ModelDownloadValue {
    const ac = new AbortController();
    downloads.set(d.id, { state: d, ac });
    const update = (patch: Partial<ModelDownloadValue>) => {
      Object.assign(d, patch);
      onProgress({ ...d });
    };
    onProgress({ ...d });
    run(ac.signal, (received, total) => update({ received, total })).then(
      () => {
        invalidate();
        update({ state: 'done' });
      },
      (e: unknown) =>
        update(
          ac.signal.aborted
            ? { state: 'canceled' }
            : { state: 'failed', error: e instanceof AppError ? e.userMessage : String((e as Error)?.message ?? e) },
        ),
    );
    return { ...d };
  }

  return {
    async catalogue() {
      const installed = new Set((await list()).map((m) => m.id));
      return CATALOGUE.map((e) => ({
        id: e.id,
        name: e.name,
        repo: e.repo,
        revision: e.revision,
        sizeBytes: e.sizeBytes,
        licence: e.licence.name,
        licenceUrl: e.licence.url,
        hardware: e.hardware,
        description: e.description,
        installed: installed.has(e.id),
      }));
    },
    async install(catalogueId, onProgress) {
      const entry = CATALOGUE.find((e) => e.id === catalogueId);
      if (!entry)
        throw new AppError('NOT_FOUND', `no catalogue model ${catalogueId}`, {
          userMessage: `There is no catalogue model "${catalogueId}".`,
        });
      const d: ModelDownloadValue = {
        id: `dl_${Date.now().toString(36)}_${n++}`,
        url: `https://huggingface.co/${entry.repo}/tree/${entry.revision}`,
        received: 0,
        total: entry.sizeBytes,
        state: 'downloading',
        error: null,
        catalogueId: entry.id,
        name: entry.name,
      };
      return track(
        d,
        (signal, progress) =>
          downloadCatalogueModel(store, entry.id, {
            ...(opts.hub ? { hub: opts.hub } : {}),
            signal,
            onProgress: (p) => progress(p.receivedBytes, p.totalBytes),
          }),
        onProgress,
      );
    },
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
