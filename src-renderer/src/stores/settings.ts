import { AppError, type CatalogueModel, type IpcOutput, type Settings } from '@atelier/common';
import { createStore } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';

type ModelList = IpcOutput<'models:list'>;
export type InstalledModel = ModelList['items'][number];
export type ModelDownload = ModelList['downloads'][number];
type Providers = IpcOutput<'engine:providers'>;
type SyncStatus = IpcOutput<'sync:status'>;
type AppInfo = IpcOutput<'app:info'>;

export interface SettingsState {
  settings: Settings | null;
  models: InstalledModel[];
  /**
   * False until the installed models have been listed once. Generate waits for it: the default
   * model decides the size a run gets (the demo model draws at 64 × 64), so a run submitted before
   * the list arrived would silently use the wrong size.
   */
  modelsLoaded: boolean;
  /** Why the model list could not be loaded; null when it loaded (or is loading). */
  modelsError: string | null;
  downloads: Record<string, ModelDownload>;
  providers: Providers | null;
  sync: SyncStatus | null;
  info: AppInfo | null;
  /** The real models on offer; null until loaded. */
  catalogue: CatalogueModel[] | null;
  catalogueError: string | null;
  load(): Promise<void>;
  loadCatalogue(): Promise<void>;
  /** Downloads (or resumes) a catalogue model file by file; progress arrives as events. */
  install(id: string): Promise<void>;
  loadModels(): Promise<void>;
  loadSync(): Promise<void>;
  update(patch: Partial<Settings>): Promise<void>;
  downloadProgressed(d: ModelDownload): void;
  importModel(path: string, mode: 'copy' | 'link'): Promise<InstalledModel>;
  download(url: string, sha256?: string, name?: string): Promise<void>;
  cancelDownload(id: string): Promise<void>;
  removeModel(id: string): Promise<void>;
  syncNow(): Promise<void>;
  /** Pause or resume syncing (sync stays switched on). */
  pauseSync(paused: boolean): Promise<void>;
}

export function createSettingsStore(api: Api, onError: (e: unknown) => void) {
  return createStore<SettingsState>()((set, get) => ({
    settings: null,
    models: [],
    modelsLoaded: false,
    modelsError: null,
    downloads: {},
    providers: null,
    sync: null,
    info: null,
    catalogue: null,
    catalogueError: null,
    async loadCatalogue() {
      try {
        const { items } = await api.invoke('models:catalogue', {});
        set({ catalogue: items, catalogueError: null });
      } catch (e) {
        set({ catalogueError: e instanceof AppError ? e.userMessage : 'The model catalogue could not be loaded.' });
      }
    },
    async install(id) {
      try {
        const d = await api.invoke('models:install', { id });
        get().downloadProgressed(d);
      } catch (e) {
        onError(e);
      }
    },
    async load() {
      let loaded;
      try {
        loaded = await Promise.all([
          api.invoke('settings:get', {}),
          api.invoke('engine:providers', {}),
          api.invoke('app:info', {}),
        ]);
      } catch (e) {
        // Generate waits for the models, which wait for this: say why instead of waiting forever.
        set({ modelsError: e instanceof AppError ? e.userMessage : 'The settings could not be loaded.' });
        throw e;
      }
      const [settings, providers, info] = loaded;
      set({ settings, providers, info });
      await Promise.all([get().loadModels(), get().loadSync()]);
    },
    async loadModels() {
      try {
        const { items, downloads } = await api.invoke('models:list', {});
        set({
          models: items,
          modelsLoaded: true,
          modelsError: null,
          downloads: Object.fromEntries(downloads.map((d) => [d.id, d])),
        });
      } catch (e) {
        set({ modelsError: e instanceof AppError ? e.userMessage : 'The installed models could not be listed.' });
        throw e;
      }
    },
    async loadSync() {
      try {
        set({ sync: await api.invoke('sync:status', {}) });
      } catch (e) {
        onError(e);
      }
    },
    async update(patch) {
      const before = get().settings;
      if (before) set({ settings: { ...before, ...patch } });
      try {
        set({ settings: await api.invoke('settings:update', patch) });
        if ('syncEnabled' in patch) void get().loadSync();
      } catch (e) {
        set({ settings: before });
        onError(e);
      }
    },
    downloadProgressed(d) {
      // A resumed catalogue download gets a new id: drop the older entries for the same model.
      const downloads = Object.fromEntries(
        Object.entries(get().downloads).filter(([, x]) => !d.catalogueId || x.catalogueId !== d.catalogueId),
      );
      set({ downloads: { ...downloads, [d.id]: d } });
      if (d.state === 'done') {
        void get().loadModels();
        if (d.catalogueId) void get().loadCatalogue();
      }
    },
    async importModel(path, mode) {
      const model = await api.invoke('models:import', { path, mode });
      await get().loadModels();
      return model;
    },
    async download(url, sha256, name) {
      const d = await api.invoke('models:download', {
        url,
        ...(sha256 ? { sha256 } : {}),
        ...(name ? { name } : {}),
      });
      get().downloadProgressed(d);
    },
    async cancelDownload(id) {
      try {
        await api.invoke('models:cancelDownload', { id });
      } catch (e) {
        onError(e);
      }
    },
    async removeModel(id) {
      try {
        await api.invoke('models:remove', { id });
        await get().loadModels();
      } catch (e) {
        onError(e);
      }
    },
    async syncNow() {
      try {
        await api.invoke('sync:now', {});
        await get().loadSync();
      } catch (e) {
        // The status says what went wrong (with Retry / Upgrade beside it); the toast says it now.
        await get().loadSync();
        onError(e);
      }
    },
    async pauseSync(paused) {
      try {
        await api.invoke('sync:pause', { paused });
        await get().loadSync();
      } catch (e) {
        onError(e);
      }
    },
  }));
}
export type SettingsStore = ReturnType<typeof createSettingsStore>;
