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

export interface DesktopPaths {
  /** The per-user (per-profile) folder everything lives in. */
  userData: string;
}

export function layoutOf(paths: DesktopPaths) {
  return {
    db: path.join(paths.userData, 'library.db'),
    images: path.join(paths.userData, 'images'),
    models: path.join(paths.userData, 'models'),
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
  const library = createLibrary({ db, filesDir: layout.images, clock, urlFor: opts.urlFor });
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
      emit('library:changed', { ids });
      return ok;
    },
    'library:delete': async ({ ids }) => {
      const r = library.delete(ids);
      emit('library:changed', { ids });
      return r;
    },
    'library:undoDelete': async ({ undoToken }) => {
      const restored = library.undoDelete(undoToken);
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
    'boards:create': async ({ name }) => library.boards.create(name),
    'boards:rename': async ({ id, name }) => library.boards.rename(id, name),
    'boards:delete': async ({ id, images }) => {
      library.boards.delete(id, images);
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
    'settings:update': async (patch) => settings.update(patch),
    'sync:status': async () => {
      const s = settings.get();
      const signedIn = cloud?.state().signedIn ?? false;
      const last = db.prepare("SELECT value FROM sync_state WHERE key = 'last_sync_at'").get() as
        { value: string } | undefined;
      return {
        enabled: s.syncEnabled,
        state: !signedIn ? 'signed_out' : !cloud!.state().online ? 'offline' : 'idle',
        lastSyncAt: last?.value ?? null,
        pending: (
          db.prepare('SELECT count(*) AS n FROM images WHERE cloud_id IS NULL AND deleted_at IS NULL').get() as {
            n: number;
          }
        ).n,
        error: null,
      };
    },
    // Brings the app up to date with the cloud now: connectivity probe, account and usage, cloud jobs.
    // The gallery sync engine (a later issue) hooks in here.
    'sync:now': async () => {
      const c = requireCloud();
      if (!c.state().signedIn) throw new AppError('AUTH_REQUIRED', 'sign in to sync');
      c.checkOnline();
      await refreshMe();
      jobs.online();
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
      await jobs.close();
      cloud?.close();
      await opts.engine.close();
      db.close();
    },
  };
}
