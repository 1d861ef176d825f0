/**
 * A desktop profile for gallery sync's system tests and bench:sync: its own folder, SQLite library,
 * cloud client signed in as `user` and sync engine, wired as the app wires them (desktop-services.ts:
 * the library's on-demand fetch goes to the engine, rows are shown for the signed-in account).
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock } from '../../src-main/services/clock.ts';
import { createCloudClient, type CloudClient } from '../../src-main/services/cloud-client.ts';
import { openDatabase, type Db } from '../../src-main/services/db.ts';
import { createLibrary, type Library } from '../../src-main/services/library.ts';
import { InMemorySecretStore } from '../../src-main/services/secret-store.ts';
import { cloudSyncPort } from '../../src-main/services/sync/cloud-port.ts';
import { createSyncEngine, type SyncCloudPort, type SyncEngine } from '../../src-main/services/sync/sync-engine.ts';

export interface SyncDevice {
  dir: string;
  db: Db;
  library: Library;
  cloud: CloudClient;
  /** The engine's cloud port (wrapped when the test asked for it). */
  port: SyncCloudPort;
  engine: SyncEngine;
  close(): void;
}

export interface SyncDeviceOptions {
  apiUrl: string;
  /** The stack's Cognito (cognito-local): where the client signs in. */
  cognito: { endpoint: string; userPoolId: string; clientId: string };
  user: { email: string; password: string };
  /** Wraps the real cloud port (to hold, fail, count or trace calls). */
  wrap?: ((p: SyncCloudPort) => SyncCloudPort) | undefined;
  /** The profile folder (an existing one: a restart); default: a new temporary one. */
  dir?: string | undefined;
  /** Unit: ms, the engine's first retry delay (default: the engine's). */
  backoffMs?: number | undefined;
  /** Unit: downloads in flight (default: the engine's). */
  concurrency?: number | undefined;
  /** Unit: objects PUT at the same time (default: the engine's). */
  uploadConcurrency?: number | undefined;
  /** The engine's report of a watched full image arriving (the Viewer's progress). */
  onDownloadProgress?: ((localId: string, receivedBytes: number, totalBytes: number | null) => void) | undefined;
}

export async function openSyncDevice(o: SyncDeviceOptions): Promise<SyncDevice> {
  const dir = o.dir ?? mkdtempSync(path.join(os.tmpdir(), 'atelier-profile-'));
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  const db = openDatabase(path.join(dir, 'library.db'));
  let engine: SyncEngine | null = null;
  let account: () => string | null = () => null;
  const library = createLibrary({
    db,
    filesDir: path.join(dir, 'images'),
    clock: systemClock,
    urlFor: (f) => f,
    visibleAccount: () => account(),
    fetchFull: (id) => engine!.fetchFull(id),
  });
  const cloud = createCloudClient({
    config: {
      apiUrl: o.apiUrl,
      cognito: { ...o.cognito, region: 'local' },
    },
    secretStore: new InMemorySecretStore(),
  });
  await cloud.signIn(o.user.email, o.user.password);
  const base = cloudSyncPort(cloud);
  const port = o.wrap ? o.wrap(base) : base;
  account = () => port.account();
  const e = createSyncEngine({
    db,
    library,
    cloud: port,
    clock: systemClock,
    ...(o.backoffMs !== undefined ? { backoffMs: o.backoffMs } : {}),
    ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
    ...(o.uploadConcurrency !== undefined ? { uploadConcurrency: o.uploadConcurrency } : {}),
    ...(o.onDownloadProgress ? { onDownloadProgress: o.onDownloadProgress } : {}),
  });
  engine = e;
  return {
    dir,
    db,
    library,
    cloud,
    port,
    engine: e,
    close() {
      e.pause();
      cloud.close();
      db.close();
    },
  };
}
