/** The gallery sync's status and "Sync now". */
import { AppError, type IpcHandlers } from '@atelier/common';
import { requireCloud, type AccountSession } from '../account-session.ts';
import type { CloudClient } from '../cloud-client.ts';
import type { GallerySync } from '../gallery-sync.ts';
import type { JobQueue } from '../jobs.ts';

export interface SyncHandlersDeps {
  cloud: CloudClient | null;
  sync: Pick<GallerySync, 'status' | 'syncNow' | 'setPaused'>;
  account: Pick<AccountSession, 'refreshMe'>;
  jobs: Pick<JobQueue, 'online'>;
}

export function createSyncHandlers(
  deps: SyncHandlersDeps,
): Pick<IpcHandlers, 'sync:status' | 'sync:now' | 'sync:pause'> {
  return {
    'sync:status': async () => deps.sync.status(),
    // Brings the app up to date with the cloud now: connectivity probe, account and usage, cloud
    // jobs, and a gallery sync pass (its failure is reported in sync:status and thrown here).
    'sync:now': async () => {
      const c = requireCloud(deps.cloud);
      if (!c.state().signedIn) throw new AppError('AUTH_REQUIRED', 'sign in to sync');
      c.checkOnline();
      await deps.account.refreshMe();
      deps.jobs.online();
      await deps.sync.syncNow();
      return { ok: true as const };
    },
    'sync:pause': async ({ paused }) => {
      deps.sync.setPaused(paused);
      return { ok: true as const };
    },
  };
}
