/**
 * The composition root of the desktop services, shared by the Electron shell and the browser
 * host: opens the library, settings and queue in the user-data folder, wires the cloud client and
 * the engine, and returns one handler per IPC channel plus the event stream the renderer listens to.
 *
 * The handlers live per area in `handlers/<area>.ts`, each a factory that takes its collaborators
 * and returns `Pick<IpcHandlers, …>` for its channels; state that is not a handler lives in a
 * service (account-session.ts, route-facts.ts, gallery-sync.ts, event-bus.ts). A new area adds
 * its own handlers file and one spread line in `handlers` below.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '@atelier/common';
import type { IpcEventName, IpcEventPayload, IpcHandlers, Settings } from '@atelier/common';
import { createAccountSession } from './account-session.ts';
import { systemClock, type Clock } from './clock.ts';
import { createCloudClient, type CloudClient, type CloudConfig, type FetchFn } from './cloud-client.ts';
import { cloudJobsPort } from './cloud-jobs-port.ts';
import { openDatabase } from './db.ts';
import { createEventBus, type DesktopEvents } from './event-bus.ts';
import { createGallerySync } from './gallery-sync.ts';
import { createAccountHandlers } from './handlers/account.ts';
import { createApiKeysHandlers } from './handlers/api-keys.ts';
import { createAppHandlers } from './handlers/app.ts';
import { createBillingHandlers } from './handlers/billing.ts';
import { createBoardsHandlers } from './handlers/boards.ts';
import { createJobsHandlers } from './handlers/jobs.ts';
import { createLibraryHandlers } from './handlers/library.ts';
import { createModelsHandlers } from './handlers/models.ts';
import { createPicturesHandlers } from './handlers/pictures.ts';
import { createSettingsHandlers } from './handlers/settings.ts';
import { createSyncHandlers } from './handlers/sync.ts';
import { createWebhooksHandlers } from './handlers/webhooks.ts';
import { createUsageHandlers } from './handlers/usage.ts';
import { createJobQueue } from './jobs.ts';
import { createLibrary, type LibraryOptions } from './library.ts';
import { createPictures } from './pictures.ts';
import { createRouteFacts, type CatalogueModelStore, type MemoryAwareEngine } from './route-facts.ts';
import { decideRoute } from './router.ts';
import type { SecretStore } from './secret-store.ts';
import { createSettings } from './settings.ts';

export { BILLING_OFF_MESSAGE } from './account-session.ts';
export type { DesktopEvents } from './event-bus.ts';
export type { CatalogueModelStore, MemoryAwareEngine } from './route-facts.ts';

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
  // Whose synced cloud images the gallery shows (set once the cloud session is restored below).
  let signedInAccount: () => string | null = () => null;
  // The gallery badges come from the sync service, made after the library (wired below).
  let cloudPlace: LibraryOptions['cloudPlace'] = () => undefined;
  // A full image still in the cloud is fetched by the sync service (wired below too).
  let fetchFull: NonNullable<LibraryOptions['fetchFull']> = (id) =>
    Promise.reject(new AppError('IMAGE_NOT_DOWNLOADED', `image ${id} is not downloaded yet`));
  const library = createLibrary({
    db,
    filesDir: layout.images,
    clock,
    urlFor: opts.urlFor,
    visibleAccount: () => signedInAccount(),
    cloudPlace: (row) => cloudPlace?.(row),
    fetchFull: (id) => fetchFull(id),
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

  const { emit, events } = createEventBus();

  const cloud = opts.cloud
    ? createCloudClient({
        config: opts.cloud,
        secretStore: opts.secretStore,
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
      })
    : null;
  const account = createAccountSession({ cloud, clock, emit, log });
  const routeFacts = createRouteFacts({ engine: opts.engine, models: opts.models, settings, cloud, account, log });

  let sync: ReturnType<typeof createGallerySync> | null = null;
  const jobs = createJobQueue({
    db,
    clock,
    library,
    engine: opts.engine,
    resolveModel: routeFacts.resolveModel,
    cloud: cloud && cloudJobsPort(cloud, { library }),
    route: async (request) => decideRoute(await routeFacts.facts(request)),
    events: {
      changed: (job) => emit('jobs:changed', job),
      progressed: (p) => emit('jobs:progressed', p),
      libraryChanged: (ids) => {
        emit('library:changed', { ids });
        // The sync service is made below (it needs the cloud session restored first).
        sync?.imagesAdded();
      },
    },
    onError: (err, jobId) => log(`job ${jobId} failed unexpectedly`, err),
  });

  if (cloud) {
    cloud.events.on('session', () => account.emitChanged());
    cloud.events.on('online', () => {
      jobs.online();
      void account.refreshMe();
    });
    cloud.events.on('offline', () => account.emitChanged());
    cloud.events.on('event', (e) => {
      void jobs.onCloudEvent(e);
      if (e.type === 'usage.changed') account.usageChanged(e.usage);
      else if (e.type === 'plan.changed' || e.type === 'ready') void account.refreshMe();
    });
    try {
      if (await cloud.restore()) await account.refreshMe();
    } catch (e) {
      log('could not restore the cloud session', e);
    }
  }
  sync = createGallerySync({
    db,
    library,
    cloud,
    settings,
    clock,
    emit,
    log,
  });
  cloudPlace = sync.cloudPlace;
  fetchFull = sync.fetchFull;
  if (cloud) {
    signedInAccount = () => (cloud.state().signedIn ? (cloud.tokens()?.username ?? null) : null);
    // Sign-out or another account: the previous account's synced images leave the view at once.
    cloud.events.on('session', () => emit('library:changed', { ids: [] }));
  }

  jobs.start();
  const purgeTimer = setInterval(() => library.purgeDeleted(purgeAfterMs), 60_000);
  purgeTimer.unref();

  // One spread per area (handlers/<area>.ts); the type below makes a missing channel a compile error.
  const handlers: IpcHandlers = {
    ...createAppHandlers({
      version: opts.version,
      platform: opts.platform,
      shell: opts.shell,
      apiUrl: opts.cloud?.apiUrl ?? null,
      mailboxUrl: opts.mailboxUrl ?? null,
      routeFacts,
    }),
    ...createJobsHandlers({ jobs, routeFacts }),
    ...createLibraryHandlers({ library, sync, emit, revealFile: opts.revealFile }),
    ...createBoardsHandlers({ library, sync, emit }),
    ...createModelsHandlers({ models: opts.models, emit }),
    ...createAccountHandlers({
      cloud,
      account,
      jobs,
      clock,
      emit,
      exportsDir: opts.exportsDir ?? path.join(opts.paths.userData, 'exports'),
      revealFile: opts.revealFile,
    }),
    ...createBillingHandlers({ cloud, account, openExternal: opts.openExternal }),
    ...createSettingsHandlers({ settings, sync }),
    ...createSyncHandlers({ cloud, sync, account, jobs }),
    ...createWebhooksHandlers({ cloud }),
    ...createApiKeysHandlers({ cloud }),
    ...createUsageHandlers({ cloud, db }),
    ...createPicturesHandlers({ pictures: createPictures({ library }), emit }),
  };

  return {
    handlers,
    emit,
    cloud,
    settings: () => settings.get(),
    events,
    async close() {
      clearInterval(purgeTimer);
      sync.close();
      await jobs.close();
      cloud?.close();
      await opts.engine.close();
      db.close();
    },
  };
}
