/** Sign-up, sign-in and the account itself (me, delete, export of all my data). */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { AppError, type IpcHandlers } from '@atelier/common';
import { requireCloud, type AccountSession } from '../account-session.ts';
import type { Clock } from '../clock.ts';
import type { CloudClient } from '../cloud-client.ts';
import type { Emit } from '../event-bus.ts';
import type { JobQueue } from '../jobs.ts';

export interface AccountHandlersDeps {
  cloud: CloudClient | null;
  account: AccountSession;
  jobs: Pick<JobQueue, 'online'>;
  clock: Clock;
  emit: Emit;
  /** Where "Export my data" saves the zip. */
  exportsDir: string;
  /** Shows a file in the OS file manager (Electron). */
  revealFile?: ((file: string) => void) | undefined;
}

type AccountChannels =
  | 'account:state'
  | 'account:signUp'
  | 'account:confirm'
  | 'account:resendCode'
  | 'account:signIn'
  | 'account:signOut'
  | 'account:forgotPassword'
  | 'account:resetPassword'
  | 'account:me'
  | 'account:delete'
  | 'account:export';

export function createAccountHandlers(deps: AccountHandlersDeps): Pick<IpcHandlers, AccountChannels> {
  const { account, jobs, clock, emit } = deps;
  const cloud = () => requireCloud(deps.cloud);
  const ok = { ok: true as const };
  return {
    'account:state': async () => account.state(),
    'account:signUp': ({ email, password }) => cloud().signUp(email, password),
    'account:confirm': async ({ email, code }) => {
      await cloud().confirm(email, code);
      return ok;
    },
    'account:resendCode': async ({ email }) => {
      await cloud().resendCode(email);
      return ok;
    },
    'account:signIn': async ({ email, password }) => {
      await cloud().signIn(email, password);
      await account.refreshMe();
      jobs.online();
      return account.state();
    },
    'account:signOut': async () => {
      await cloud().signOut();
      account.forget();
      return ok;
    },
    'account:forgotPassword': async ({ email }) => {
      await cloud().forgotPassword(email);
      return ok;
    },
    'account:resetPassword': async ({ email, code, password }) => {
      await cloud().resetPassword(email, code, password);
      return ok;
    },
    'account:me': () => account.fetchMe(),
    'account:delete': async ({ email, password }) => {
      const c = cloud();
      try {
        await c.api.deleteAccount(email, password);
      } catch (e) {
        // Already deleted or being deleted (a second click, another device): sign out all the same.
        if (!AppError.is(e, 'ACCOUNT_DELETED')) throw e;
      }
      await c.signOut();
      account.forget();
      return ok;
    },
    'account:export': async () => {
      const c = cloud();
      const progress = (
        phase: 'preparing' | 'downloading' | 'saved',
        receivedBytes: number,
        totalBytes: number | null,
      ) => emit('account:exportProgressed', { phase, receivedBytes, totalBytes });
      progress('preparing', 0, null);
      const r = await c.api.exportData();
      mkdirSync(deps.exportsDir, { recursive: true });
      const stamp = clock.now().toISOString().slice(0, 19).replaceAll(':', '-');
      const file = path.join(deps.exportsDir, `atelier-export-${stamp}.zip`);
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
      deps.revealFile?.(file);
      return { path: file, images: r.images, bytes };
    },
  };
}
