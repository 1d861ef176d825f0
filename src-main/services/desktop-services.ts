/**
 * The composition root of the desktop services, shared by the Electron shell and the browser
 * host: opens the library, settings and queue in the user-data folder, wires the cloud client and
 * the engine, and returns one handler per IPC channel plus the event stream the renderer listens to.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  AppError,
  type AccountState,
  type BillingStatus,
  type CatalogueModel,
  type CloudModel,
  type MemoryEstimate,
  type ModelDownload,
  type GenerateRequest,
  type IpcEventName,
  type IpcEventPayload,
  type IpcHandlers,
  type Me,
  type Settings,
} from '@atelier/common';
import { systemClock, type Clock } from './clock.ts';
import { createCloudClient, type CloudClient, type CloudConfig, type FetchFn } from './cloud-client.ts';
import { openDatabase } from './db.ts';
import type { EnginePort, ModelStorePort } from './engine.ts';
import { createJobQueue, type CloudJobsPort } from './jobs.ts';
import { createLibrary } from './library.ts';
import { decideRoute, type RouteFacts } from './router.ts';
import type { SecretStore } from './secret-store.ts';
import { createSettings } from './settings.ts';
import { cloudSyncPort } from './sync/cloud-port.ts';
import { createSyncEngine, type SyncEngine } from './sync/sync-engine.ts';

export interface DesktopPaths {
  /** The per-user (per-profile) folder everything lives in. */
  userData: string;
}

export function layoutOf(paths: DesktopPaths) {
  return {
    db: path.join(paths.userData, 'library.db'),
    images: path.join(paths.userData, 'images'),
    models: path.join(paths.userData, 'models'),
    thumbs: path.join(paths.userData, 'thumbs'),
  };
}

/**
 * What the engine side adds for issue 10 (see INTERFACES.md): the memory check before a job
 * starts, and the catalogue of real models to download. Optional members so the services run with
 * ports that do not have them (tests, older hosts); the UI then offers neither.
 */
export type MemoryAwareEngine = EnginePort & {
  estimateMemory?(req: {
    width: number;
    height: number;
    count: number;
    modelPath: string | null;
  }): Promise<MemoryEstimate>;
};
export type CatalogueModelStore = ModelStorePort & {
  catalogue?(): Promise<CatalogueModel[]>;
  install?(catalogueId: string, onProgress: (d: ModelDownload) => void): Promise<ModelDownload>;
};

/** Said instead of the server's configuration hint (which names environment variables). */
export const BILLING_OFF_MESSAGE = 'Upgrades are not available on this server.';

export interface DesktopServicesOptions {
  paths: DesktopPaths;
  secretStore: SecretStore;
  engine: MemoryAwareEngine;
  models: CatalogueModelStore;
  /** Development stack only: the local mailbox page where sign-up and reset codes arrive. */
  mailboxUrl?: string | null;
  /** Null when no cloud is configured: local-only mode, account calls answer SERVICE_UNAVAILABLE. */
  cloud: CloudConfig | null;
  fetch?: FetchFn;
  clock?: Clock;
  shell: 'electron' | 'browser';
  version: string;
  platform: string;
  /** The URL the renderer loads a library file from. */
  urlFor: (fileName: string) => string;
  /** Opens a URL in the system browser (Electron); the browser host leaves it to the page. */
  openExternal?: (url: string) => Promise<void>;
  /** Shows a file in the OS file manager (Electron). */
  revealFile?: (file: string) => void;
  /** Where "Export my data" saves the zip. Default: `<userData>/exports` (Electron passes Downloads). */
  exportsDir?: string;
  settingsDefaults?: Partial<Settings>;
  /** Unit: ms. Deleted images stay restorable for this long before their files are removed. */
  purgeAfterMs?: number;
  log?: (msg: string, err?: unknown) => void;
}

export interface DesktopEvents {
  on<E extends IpcEventName>(event: E, listener: (payload: IpcEventPayload<E>) => void): () => void;
  onAny(listener: (event: IpcEventName, payload: unknown) => void): () => void;
}

export interface DesktopServices {
  handlers: IpcHandlers;
  events: DesktopEvents;
  /** Emits `billing:returned` (from a deep link) and other shell-originated events. */
  emit<E extends IpcEventName>(event: E, payload: IpcEventPayload<E>): void;
  cloud: CloudClient | null;
  /** The current settings (the updater reads the auto-update opt-out before every check). */
  settings(): Settings;
  close(): Promise<void>;
}

export async function createDesktopServices(opts: DesktopServicesOptions): Promise<DesktopServices> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? (() => undefined);
  const layout = layoutOf(opts.paths);
  mkdirSync(layout.images, { recursive: true });
  const db = openDatabase(layout.db);
  // Whose synced cloud images the gallery shows (set once the cloud client exists below).
  let signedInAccount: () => string | null = () => null;
  const library = createLibrary({
    db,
    filesDir: layout.images,
    clock,
    urlFor: opts.urlFor,
    visibleAccount: () => signedInAccount(),
  });
  const repaired = library.repair();
  if (repaired.removedFiles || repaired.removedRows) log(`library repair: ${JSON.stringify(repaired)}`);
  const purgeAfterMs = opts.purgeAfterMs ?? 10 * 60_000;
  library.purgeDeleted(purgeAfterMs);

  const settings = createSettings({
    db,
    defaults: {
      runMode: 'auto',
      modelsDir: layout.models,
      defaultModel: null,
      threads: 0,
      syncEnabled: true,
      autoUpdate: true,
      theme: 'system',
      defaultScheduler: 'euler_a',
      autoCloud: 'ask',
      ...opts.settingsDefaults,
    },
  });

  const emitter = new EventEmitter();
  emitter.setMaxListeners(100);
  const emit = <E extends IpcEventName>(event: E, payload: IpcEventPayload<E>) => {
    emitter.emit(event, payload);
    emitter.emit('*', event, payload);
  };

  const cloud = opts.cloud
    ? createCloudClient({
        config: opts.cloud,
        secretStore: opts.secretStore,
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
      })
    : null;
  let me: Me | null = null;
  /** Unit: ms since epoch of the last successful GET /v1/me. */
  let meAt = 0;
  let billing: BillingStatus | null = null;
  let cloudModels: CloudModel[] = [];

  const requireCloud = (): CloudClient => {
    if (!cloud)
      throw new AppError('SERVICE_UNAVAILABLE', 'no cloud is configured', {
        userMessage: 'Atelier Cloud is not configured in this build.',
      });
    return cloud;
  };
  function accountState(): AccountState {
    const s = cloud?.state();
    return {
      signedIn: s?.signedIn ?? false,
      email: s?.email ?? null,
      plan: s?.signedIn ? (me?.plan ?? null) : null,
      usage: s?.signedIn ? (me?.usage ?? null) : null,
      online: s?.online ?? false,
      pendingConfirmation: s?.pendingConfirmation ?? null,
      billing: s?.signedIn ? billing : null,
      cloudModels,
    };
  }
  const emitAccount = () => emit('account:changed', accountState());
  async function refreshMe(): Promise<void> {
    if (!cloud?.state().signedIn) {
      me = null;
      return;
    }
    try {
      me = await cloud.api.me();
      meAt = clock.now().getTime();
      emitAccount();
    } catch (e) {
      if (!AppError.is(e, 'OFFLINE')) log('could not fetch the account', e);
      return;
    }
    // What the plan allows and whether upgrades exist here: known before any click.
    await Promise.all([refreshBilling(), refreshCloudModels()]);
    emitAccount();
  }
  async function refreshBilling(): Promise<void> {
    if (!cloud) return;
    try {
      const sub = await cloud.api.billingSubscription();
      billing = { available: true, hasSubscription: sub.hasCustomer && sub.status !== null };
    } catch (e) {
      if (AppError.is(e, 'BILLING_DISABLED')) billing = { available: false, hasSubscription: false };
      else if (!AppError.is(e, 'OFFLINE')) log('could not fetch the billing state', e);
    }
  }
  async function refreshCloudModels(): Promise<void> {
    if (!cloud) return;
    try {
      cloudModels = (await cloud.api.models()).items;
    } catch (e) {
      if (!AppError.is(e, 'OFFLINE')) log('could not fetch the cloud models', e);
    }
  }
  /** Billing calls: BILLING_DISABLED becomes one plain sentence, and the state remembers it. */
  async function billingCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (AppError.is(e, 'BILLING_DISABLED')) {
        billing = { available: false, hasSubscription: false };
        emitAccount();
        throw new AppError('BILLING_DISABLED', 'billing is off on this server', { userMessage: BILLING_OFF_MESSAGE });
      }
      throw e;
    }
  }

  // Engine facts are cached: provider detection is slow and does not change while running.
  let providersCache: ReturnType<EnginePort['providers']> | null = null;
  const providers = () => {
    providersCache ??= opts.engine.providers();
    providersCache.catch(() => (providersCache = null));
    return providersCache;
  };
  async function resolveModel(model: string | undefined): Promise<{ id: string; path: string } | null> {
    const installed = await opts.models.list();
    const wanted = model ?? settings.get().defaultModel ?? undefined;
    const m = wanted ? installed.find((x) => x.id === wanted) : (installed.find((x) => x.isDefault) ?? installed[0]);
    return m ? { id: m.id, path: m.path } : null;
  }
  async function memoryFor(
    size: { width: number; height: number } | null,
    count: number,
    model: { path: string } | null,
  ): Promise<MemoryEstimate | null> {
    if (!size || !opts.engine.estimateMemory) return null;
    try {
      return await opts.engine.estimateMemory({ ...size, count, modelPath: model?.path ?? null });
    } catch (e) {
      log('memory estimate failed', e);
      return null;
    }
  }
  async function facts(request: {
    target: GenerateRequest['target'];
    count: number;
    model?: string | undefined;
    width?: number | undefined;
    height?: number | undefined;
    initImage?: string | undefined;
  }): Promise<RouteFacts> {
    const [p, model] = await Promise.all([
      providers().catch(() => ({ providers: [], threads: 0 })),
      resolveModel(request.model),
    ]);
    const size = request.width && request.height ? { width: request.width, height: request.height } : null;
    const s = cloud?.state();
    // Usage can change elsewhere (another device, the admin CLI): a stale figure is refreshed in
    // the background, and the account event that follows makes the screen ask again.
    if (s?.signedIn && s.online && clock.now().getTime() - meAt > 30_000) {
      meAt = clock.now().getTime();
      void refreshMe();
    }
    const current = settings.get();
    const named = request.model ? cloudModels.find((m) => m.id === request.model) : undefined;
    return {
      requested: request.target === 'auto' ? current.runMode : request.target,
      count: request.count,
      size,
      providers: p.providers,
      modelInstalled: model !== null,
      signedIn: s?.signedIn ?? false,
      online: s?.online ?? false,
      plan: me?.plan ?? null,
      quota: me ? { used: me.usage.used, limit: me.usage.limit } : null,
      cloudModel: named && !named.default ? { name: named.name, plans: named.plans } : null,
      autoCloud: current.autoCloud,
      memory: await memoryFor(size, request.count, model),
      startImage: request.initImage !== undefined,
    };
  }

  const cloudJobs: CloudJobsPort | null = cloud && {
    isOnline: () => cloud.state().online && cloud.state().signedIn,
    createGeneration: (req, key) => cloud.api.createGeneration(req, key),
    getGeneration: (id) => cloud.api.getGeneration(id),
    cancelGeneration: async (id) => {
      await cloud.api.cancelGeneration(id);
    },
    fetchImage: async (imageId) => {
      const image = await cloud.api.getImage(imageId);
      if (!image.url) throw new AppError('STORAGE_UNAVAILABLE', `no download URL for ${imageId}`);
      return { png: await cloud.download(image.url), metadata: image.metadata };
    },
  };

  const jobs = createJobQueue({
    db,
    clock,
    library,
    engine: opts.engine,
    resolveModel,
    cloud: cloudJobs,
    route: async (request) => decideRoute(await facts(request)),
    events: {
      changed: (job) => emit('jobs:changed', job),
      progressed: (p) => emit('jobs:progressed', p),
      libraryChanged: (ids) => emit('library:changed', { ids }),
    },
    onError: (err, jobId) => log(`job ${jobId} failed unexpectedly`, err),
  });

  if (cloud) {
    cloud.events.on('session', () => emitAccount());
    cloud.events.on('online', () => {
      jobs.online();
      void refreshMe();
    });
    cloud.events.on('offline', () => emitAccount());
    cloud.events.on('event', (e) => {
      void jobs.onCloudEvent(e);
      if (e.type === 'usage.changed' && me) {
        me = { ...me, usage: e.usage };
        emitAccount();
      } else if (e.type === 'plan.changed' || e.type === 'ready') void refreshMe();
    });
    try {
      if (await cloud.restore()) await refreshMe();
    } catch (e) {
      log('could not restore the cloud session', e);
    }
  }
  // Gallery sync (issue 13): passes on demand, when the cloud says the gallery changed, when back
  // online, after local edits and every minute; never while signed out or switched off.
  const sync: SyncEngine | null = cloud
    ? createSyncEngine({
        db,
        library,
        thumbsDir: layout.thumbs,
        cloud: cloudSyncPort(cloud, opts.fetch),
        clock,
        log,
      })
    : null;
  if (sync && !settings.get().syncEnabled) sync.pause();
  if (cloud) {
    signedInAccount = () => (cloud.state().signedIn ? (cloud.tokens()?.username ?? null) : null);
    // Sign-out or another account: the previous account's synced images leave the view at once.
    cloud.events.on('session', () => emit('library:changed', { ids: [] }));
  }
  let syncTimer: NodeJS.Timeout | null = null;
  const runSync = async () => {
    if (!sync || !settings.get().syncEnabled || !cloud?.state().signedIn) return;
    try {
      await sync.syncOnce();
    } catch (e) {
      if (!AppError.is(e, 'OFFLINE')) log('gallery sync failed', e);
    }
    emit('library:changed', { ids: [] });
  };
  const scheduleSync = (delayMs = 1_000) => {
    if (syncTimer) clearTimeout(syncTimer);
    syncTimer = setTimeout(() => void runSync(), delayMs);
    syncTimer.unref();
  };
  if (cloud) {
    cloud.events.on('event', (e) => {
      if (e.type === 'gallery.changed' || e.type === 'ready') scheduleSync(200);
    });
    cloud.events.on('online', () => scheduleSync(200));
  }
  const syncInterval = setInterval(() => void runSync(), 60_000);
  syncInterval.unref();
  /** Queues a local edit for the cloud (only images/boards this account may sync). */
  const recordEdit: NonNullable<SyncEngine>['recordEdit'] = (target, id, field, value) => {
    if (!sync) return;
    sync.recordEdit(target, id, field, value);
    scheduleSync();
  };

  jobs.start();
  const purgeTimer = setInterval(() => library.purgeDeleted(purgeAfterMs), 60_000);
  purgeTimer.unref();

  const ok = { ok: true as const };
  const handlers: IpcHandlers = {
    'app:info': async () => ({
      version: opts.version,
      platform: opts.platform,
      shell: opts.shell,
      apiUrl: opts.cloud?.apiUrl ?? null,
      mailboxUrl: opts.mailboxUrl ?? null,
    }),
    'jobs:submit': (input) => jobs.submit(input),
    'jobs:list': async () => ({ items: jobs.list() }),
    'jobs:cancel': async ({ jobId }) => {
      await jobs.cancel(jobId);
      return ok;
    },
    'jobs:retry': ({ jobId, target }) => jobs.retry(jobId, target),
    'jobs:reorder': async ({ jobId, position }) => {
      jobs.reorder(jobId, position);
      return ok;
    },
    'router:explain': async (input) => decideRoute(await facts(input)).decision,
    'library:list': async (q) => library.list(q),
    'library:get': async ({ id }) => library.get(id),
    'library:update': async ({ ids, starred, boardId }) => {
      library.update(ids, {
        ...(starred !== undefined ? { starred } : {}),
        ...(boardId !== undefined ? { boardId } : {}),
      });
      for (const id of ids) {
        if (starred !== undefined) recordEdit('image', id, 'starred', starred);
        if (boardId !== undefined) recordEdit('image', id, 'boardId', boardId);
      }
      emit('library:changed', { ids });
      return ok;
    },
    'library:delete': async ({ ids }) => {
      const r = library.delete(ids);
      for (const id of ids) recordEdit('image', id, 'deleted', true);
      emit('library:changed', { ids });
      return r;
    },
    'library:undoDelete': async ({ undoToken }) => {
      const ids = (db.prepare('SELECT id FROM images WHERE delete_token = ?').all(undoToken) as { id: string }[]).map(
        (r) => r.id,
      );
      const restored = library.undoDelete(undoToken);
      for (const id of ids) recordEdit('image', id, 'deleted', false);
      emit('library:changed', { ids: [] });
      return { restored };
    },
    'library:import': async ({ paths }) => {
      const r = await library.importPaths(paths);
      if (r.ids.length) emit('library:changed', { ids: r.ids });
      return { imported: r.imported, skipped: r.skipped };
    },
    'library:reveal': async ({ id }) => {
      const file = library.pathOf(id);
      opts.revealFile?.(file);
      return { path: file };
    },
    'boards:list': async () => ({ items: library.boards.list() }),
    'boards:create': async ({ name }) => {
      const b = library.boards.create(name);
      recordEdit('board', b.id, 'create', name);
      return b;
    },
    'boards:rename': async ({ id, name }) => {
      const b = library.boards.rename(id, name);
      recordEdit('board', id, 'name', name);
      return b;
    },
    'boards:delete': async ({ id, images }) => {
      const onBoard =
        images === 'delete'
          ? (
              db.prepare('SELECT id FROM images WHERE board_id = ? AND deleted_at IS NULL').all(id) as { id: string }[]
            ).map((r) => r.id)
          : [];
      library.boards.delete(id, images);
      recordEdit('board', id, 'boardDeleted', true);
      for (const imageId of onBoard) recordEdit('image', imageId, 'deleted', true);
      emit('library:changed', { ids: [] });
      return ok;
    },
    'models:list': async () => ({ items: await opts.models.list(), downloads: opts.models.downloads() }),
    'models:import': ({ path: p, mode }) => opts.models.import(p, mode),
    'models:download': (input) => opts.models.download(input, (d) => emit('models:progressed', d)),
    'models:catalogue': async () => {
      const list = opts.models.catalogue;
      if (!list)
        throw new AppError('SERVICE_UNAVAILABLE', 'this model store has no catalogue', {
          userMessage: 'This build cannot download models from the catalogue. Import a model folder instead.',
        });
      return { items: await list.call(opts.models) };
    },
    'models:install': async ({ id }) => {
      const install = opts.models.install;
      if (!install)
        throw new AppError('SERVICE_UNAVAILABLE', 'this model store cannot install catalogue models', {
          userMessage: 'This build cannot download models from the catalogue. Import a model folder instead.',
        });
      return install.call(opts.models, id, (d) => emit('models:progressed', d));
    },
    'models:cancelDownload': async ({ id }) => {
      await opts.models.cancelDownload(id);
      return ok;
    },
    'models:remove': async ({ id }) => {
      await opts.models.remove(id);
      return ok;
    },
    'engine:providers': () => providers(),
    'account:state': async () => accountState(),
    'account:signUp': ({ email, password }) => requireCloud().signUp(email, password),
    'account:confirm': async ({ email, code }) => {
      await requireCloud().confirm(email, code);
      return ok;
    },
    'account:resendCode': async ({ email }) => {
      await requireCloud().resendCode(email);
      return ok;
    },
    'account:signIn': async ({ email, password }) => {
      await requireCloud().signIn(email, password);
      await refreshMe();
      jobs.online();
      return accountState();
    },
    'account:signOut': async () => {
      await requireCloud().signOut();
      me = null;
      billing = null;
      emitAccount();
      return ok;
    },
    'account:forgotPassword': async ({ email }) => {
      await requireCloud().forgotPassword(email);
      return ok;
    },
    'account:resetPassword': async ({ email, code, password }) => {
      await requireCloud().resetPassword(email, code, password);
      return ok;
    },
    'account:me': async () => {
      me = await requireCloud().api.me();
      emitAccount();
      return me;
    },
    'account:delete': async ({ email, password }) => {
      const c = requireCloud();
      try {
        await c.api.deleteAccount(email, password);
      } catch (e) {
        // Already deleted or being deleted (a second click, another device): sign out all the same.
        if (!AppError.is(e, 'ACCOUNT_DELETED')) throw e;
      }
      await c.signOut();
      me = null;
      billing = null;
      emitAccount();
      return ok;
    },
    'account:export': async () => {
      const c = requireCloud();
      const progress = (
        phase: 'preparing' | 'downloading' | 'saved',
        receivedBytes: number,
        totalBytes: number | null,
      ) => emit('account:exportProgressed', { phase, receivedBytes, totalBytes });
      progress('preparing', 0, null);
      const r = await c.api.exportData();
      const dir = opts.exportsDir ?? path.join(opts.paths.userData, 'exports');
      mkdirSync(dir, { recursive: true });
      const stamp = clock.now().toISOString().slice(0, 19).replaceAll(':', '-');
      const file = path.join(dir, `atelier-export-${stamp}.zip`);
      progress('downloading', 0, r.bytes);
      let last = 0;
      const bytes = await c.downloadTo(r.url, file, (received, total) => {
        // At most ~100 events per download, plus the last one.
        const step = Math.max(1, Math.floor((total ?? r.bytes) / 100));
        if (received - last >= step || received === total) {
          last = received;
          progress('downloading', received, total ?? r.bytes);
        }
      });
      progress('saved', bytes, bytes);
      opts.revealFile?.(file);
      return { path: file, images: r.images, bytes };
    },
    'billing:upgrade': async () => {
      const r = await billingCall(() => requireCloud().api.checkout());
      await opts.openExternal?.(r.url);
      return r;
    },
    'billing:manage': async () => {
      const r = await billingCall(() => requireCloud().api.portal());
      await opts.openExternal?.(r.url);
      return r;
    },
    'settings:get': async () => settings.get(),
    'settings:update': async (patch) => {
      const next = settings.update(patch);
      if (sync && patch.syncEnabled !== undefined) {
        if (next.syncEnabled) {
          sync.resume();
          scheduleSync(0);
        } else sync.pause();
      }
      return next;
    },
    'sync:status': async () => {
      const s = settings.get();
      const signedIn = cloud?.state().signedIn ?? false;
      const st = sync?.status();
      const state = !signedIn
        ? 'signed_out'
        : !s.syncEnabled
          ? 'paused'
          : !cloud!.state().online
            ? 'offline'
            : (st?.state ?? 'idle');
      return {
        enabled: s.syncEnabled,
        state: state === 'signed_out' && signedIn ? 'idle' : state,
        lastSyncAt: st?.lastSyncAt ?? null,
        pending: sync?.pending() ?? 0,
        error: st?.error ?? null,
        errorCode: st?.errorCode ?? null,
        progress: { done: st?.done ?? 0, total: st?.total ?? 0 },
      };
    },
    // Brings the app up to date with the cloud now: connectivity probe, account and usage, cloud
    // jobs, and a gallery sync pass (its failure is reported in sync:status and thrown here).
    'sync:now': async () => {
      const c = requireCloud();
      if (!c.state().signedIn) throw new AppError('AUTH_REQUIRED', 'sign in to sync');
      c.checkOnline();
      await refreshMe();
      jobs.online();
      if (sync && settings.get().syncEnabled) {
        await sync.syncOnce();
        emit('library:changed', { ids: [] });
      }
      return ok;
    },
  };

  return {
    handlers,
    emit,
    cloud,
    settings: () => settings.get(),
    events: {
      on(event, listener) {
        emitter.on(event, listener as (p: unknown) => void);
        return () => emitter.off(event, listener as (p: unknown) => void);
      },
      onAny(listener) {
        emitter.on('*', listener);
        return () => emitter.off('*', listener);
      },
    },
    async close() {
      clearInterval(purgeTimer);
      clearInterval(syncInterval);
      if (syncTimer) clearTimeout(syncTimer);
      sync?.pause();
      await jobs.close();
      cloud?.close();
      await opts.engine.close();
      db.close();
    },
  };
}
