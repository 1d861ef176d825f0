/**
 * When the gallery syncs (issue 13), around the sync engine (sync/sync-engine.ts) that does a
 * pass: on demand, when the cloud says the gallery changed, when back online, shortly after a
 * local edit and every minute; never while signed out, paused, or switched off in Settings. Also
 * the status the `sync:status` channel reports (pushed as `sync:changed` when it changes) and the
 * cloud badge of each gallery image.
 */
import { AppError, type IpcOutput } from '@atelier/common';
import type { Clock } from './clock.ts';
import type { CloudClient } from './cloud-client.ts';
import type { Db } from './db.ts';
import type { Emit } from './event-bus.ts';
import type { CloudPlace, Library } from './library.ts';
import type { SettingsStore } from './settings.ts';
import { cloudSyncPort } from './sync/cloud-port.ts';
import { createSyncEngine, type SyncEngine } from './sync/sync-engine.ts';

export interface GallerySyncOptions {
  db: Db;
  library: Library;
  /** Null in local-only mode: nothing syncs, edits are not queued. */
  cloud: CloudClient | null;
  settings: SettingsStore;
  clock: Clock;
  emit: Emit;
  log: (msg: string, err?: unknown) => void;
}

export type GallerySync = ReturnType<typeof createGallerySync>;

/** Unit: ms between background passes. */
const INTERVAL_MS = 60_000;

export function createGallerySync({ db, library, cloud, settings, clock, emit, log }: GallerySyncOptions) {
  const engine: SyncEngine | null = cloud
    ? createSyncEngine({
        db,
        library,
        cloud: cloudSyncPort(cloud),
        clock,
        log,
        // The gallery (badge) and an open Viewer learn of arrived full images, batched per 250 ms.
        onDownloaded: (id) => {
          arrived.push(id);
          arrivedTimer ??= setTimeout(() => {
            arrivedTimer = null;
            emit('library:changed', { ids: arrived.splice(0) });
          }, 250);
          arrivedTimer.unref?.();
        },
        // The Viewer shows how much of the image it opened has arrived.
        onDownloadProgress: (id, receivedBytes, totalBytes) =>
          emit('library:downloadProgressed', { id, receivedBytes, totalBytes }),
        // Tells the renderer as a pass moves (at most every 250 ms, and at every state change).
        onStatus: (st) => {
          const now = Date.now();
          // The background downloads finishing is a change of state too (the shell stops saying "Downloading").
          const downloading = st.downloads.waiting > 0;
          if (st.state !== lastState || downloading !== lastDownloading || now - lastEmit >= 250) {
            lastState = st.state;
            lastDownloading = downloading;
            lastEmit = now;
            emitChanged();
          }
        },
      })
    : null;
  let lastState = '';
  let lastDownloading = false;
  const arrived: string[] = [];
  let arrivedTimer: NodeJS.Timeout | null = null;
  let lastEmit = 0;
  /** Paused by the person (Pause in the shell); separate from the Settings switch. */
  let userPaused = db.prepare("SELECT value FROM sync_state WHERE key = 'paused'").get() !== undefined;
  const active = () => settings.get().syncEnabled && !userPaused;
  if (engine && !active()) engine.pause();

  let timer: NodeJS.Timeout | null = null;
  const run = async () => {
    if (!engine || !active() || !cloud?.state().signedIn) return;
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
      // plan.changed: an upgrade makes room, so pictures that did not fit upload now, not at the next tick.
      if (e.type === 'gallery.changed' || e.type === 'ready' || e.type === 'plan.changed') schedule(200);
    });
    cloud.events.on('online', () => {
      emitChanged();
      schedule(200);
    });
    // The shell's state follows the connection at once: a pass still retrying (its backoff can take
    // many seconds) would otherwise keep saying "Syncing" or "in sync" long after the cloud went away.
    cloud.events.on('offline', () => emitChanged());
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
    /** New pictures in the library (a finished job, an import): upload them soon, not at the next 60 s tick. */
    imagesAdded(): void {
      if (engine && active() && cloud?.state().signedIn) schedule();
    },
    /** A pass now, its failure thrown (the `sync:now` channel); nothing when switched off. */
    async syncNow(): Promise<void> {
      if (engine && active()) {
        await engine.syncOnce();
        emit('library:changed', { ids: [] });
      }
    },
    /** Follows the Settings switch: off pauses, on resumes with a pass at once. */
    setEnabled(enabled: boolean): void {
      if (!engine) return;
      if (enabled && active()) {
        engine.resume();
        schedule(0);
      } else engine.pause();
      emitChanged();
    },
    /** Pause / Resume (remembered across restarts): nothing moves while paused; resuming syncs at once. */
    setPaused(paused: boolean): void {
      userPaused = paused;
      if (paused) db.prepare("INSERT OR REPLACE INTO sync_state (key, value) VALUES ('paused', '1')").run();
      else db.prepare("DELETE FROM sync_state WHERE key = 'paused'").run();
      if (!engine) return;
      if (active()) {
        engine.resume();
        schedule(0);
      } else engine.pause();
      emitChanged();
    },
    /**
     * The full PNG of a row that came down with its thumbnail only, now (ahead of the background
     * queue); works while paused too, because a person asked for this one image.
     */
    async fetchFull(id: string): Promise<void> {
      if (!engine)
        throw new AppError('IMAGE_NOT_DOWNLOADED', `image ${id}: no cloud in this mode`, {
          userMessage: 'This image is in the cloud and this app runs without the cloud, so it cannot be downloaded.',
        });
      await engine.fetchFull(id);
    },
    /** The gallery badge of a library row: in the cloud, uploading (or waiting to), or only here. */
    cloudPlace(row: { id: string; cloud_id: string | null; origin: string }): CloudPlace | undefined {
      if (!engine) return undefined;
      if (row.cloud_id) return 'cloud';
      if (engine.isUploading(row.id)) return 'uploading';
      // Waiting for room in the cloud storage (the shell says so and offers Upgrade): only here.
      if (engine.doesNotFit(row.id)) return 'local';
      return active() && cloud?.state().signedIn ? 'uploading' : 'local';
    },
    status,
    close(): void {
      clearInterval(interval);
      if (timer) clearTimeout(timer);
      if (arrivedTimer) clearTimeout(arrivedTimer);
      engine?.pause();
    },
  };

  function emitChanged(): void {
    const st = status();
    emit('sync:changed', { state: st.state, pending: st.pending });
  }

  function status(): IpcOutput<'sync:status'> {
    const s = settings.get();
    const signedIn = cloud?.state().signedIn ?? false;
    const st = engine?.status();
    const state = !signedIn
      ? 'signed_out'
      : !s.syncEnabled || userPaused
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
      paused: userPaused,
      storage: signedIn ? (st?.storage ?? null) : null,
      pendingBytes: engine?.pendingBytes() ?? 0,
      overLimit: signedIn ? (st?.overLimit ?? null) : null,
      downloads: signedIn && st ? st.downloads : { done: 0, total: 0, waiting: 0 },
    };
  }
}
