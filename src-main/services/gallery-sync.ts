/**
 * When the gallery syncs (issue 13), around the sync engine (sync/sync-engine.ts) that does a
 * pass: on demand, when the cloud says the gallery changed, when back online, shortly after a
 * local edit and every minute; never while signed out or switched off in Settings. Also the
 * status the `sync:status` channel reports.
 */
import { AppError, type IpcOutput } from '@atelier/common';
import type { Clock } from './clock.ts';
import type { CloudClient, FetchFn } from './cloud-client.ts';
import type { Db } from './db.ts';
import type { Emit } from './event-bus.ts';
import type { Library } from './library.ts';
import type { SettingsStore } from './settings.ts';
import { cloudSyncPort } from './sync/cloud-port.ts';
import { createSyncEngine, type SyncEngine } from './sync/sync-engine.ts';

export interface GallerySyncOptions {
  db: Db;
  library: Library;
  thumbsDir: string;
  /** Null in local-only mode: nothing syncs, edits are not queued. */
  cloud: CloudClient | null;
  fetch?: FetchFn | undefined;
  settings: SettingsStore;
  clock: Clock;
  emit: Emit;
  log: (msg: string, err?: unknown) => void;
}

export type GallerySync = ReturnType<typeof createGallerySync>;

/** Unit: ms between background passes. */
const INTERVAL_MS = 60_000;

export function createGallerySync({
  db,
  library,
  thumbsDir,
  cloud,
  fetch,
  settings,
  clock,
  emit,
  log,
}: GallerySyncOptions) {
  const engine: SyncEngine | null = cloud
    ? createSyncEngine({ db, library, thumbsDir, cloud: cloudSyncPort(cloud, fetch), clock, log })
    : null;
  if (engine && !settings.get().syncEnabled) engine.pause();

  let timer: NodeJS.Timeout | null = null;
  const run = async () => {
    if (!engine || !settings.get().syncEnabled || !cloud?.state().signedIn) return;
    try {
      await engine.syncOnce();
    } catch (e) {
      if (!AppError.is(e, 'OFFLINE')) log('gallery sync failed', e);
    }
    emit('library:changed', { ids: [] });
  };
  /** A pass after `delayMs` (restarting the wait if one is already planned). */
  const schedule = (delayMs = 1_000) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void run(), delayMs);
    timer.unref();
  };
  if (cloud) {
    cloud.events.on('event', (e) => {
      if (e.type === 'gallery.changed' || e.type === 'ready') schedule(200);
    });
    cloud.events.on('online', () => schedule(200));
  }
  const interval = setInterval(() => void run(), INTERVAL_MS);
  interval.unref();

  return {
    /** Queues a local edit for the cloud (only images/boards this account may sync). */
    recordEdit: ((target, id, field, value) => {
      if (!engine) return;
      engine.recordEdit(target, id, field, value);
      schedule();
    }) as SyncEngine['recordEdit'],
    /** A pass now, its failure thrown (the `sync:now` channel); nothing when switched off. */
    async syncNow(): Promise<void> {
      if (engine && settings.get().syncEnabled) {
        await engine.syncOnce();
        emit('library:changed', { ids: [] });
      }
    },
    /** Follows the Settings switch: off pauses, on resumes with a pass at once. */
    setEnabled(enabled: boolean): void {
      if (!engine) return;
      if (enabled) {
        engine.resume();
        schedule(0);
      } else engine.pause();
    },
    status(): IpcOutput<'sync:status'> {
      const s = settings.get();
      const signedIn = cloud?.state().signedIn ?? false;
      const st = engine?.status();
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
        pending: engine?.pending() ?? 0,
        error: st?.error ?? null,
        errorCode: st?.errorCode ?? null,
        progress: { done: st?.done ?? 0, total: st?.total ?? 0 },
      };
    },
    close(): void {
      clearInterval(interval);
      if (timer) clearTimeout(timer);
      engine?.pause();
    },
  };
}
