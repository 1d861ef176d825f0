import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { StoreApi } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';
import { createAccountStore } from './account.ts';
import { createAppStore } from './app.ts';
import { createGalleryStore } from './gallery.ts';
import { createGenerateStore } from './generate.ts';
import { createJobsStore } from './jobs.ts';
import { createSettingsStore } from './settings.ts';
import { browserPixels, createStartStore, type LoadPixels } from './start.ts';

/** One store per feature, wired to the bridge's events. The composition root of the renderer. */
export function createStores(api: Api, loadPixels: LoadPixels = browserPixels) {
  const app = createAppStore();
  const onError = (e: unknown) => app.getState().reportError(e);
  const settings = createSettingsStore(api, onError);
  const start = createStartStore(api, loadPixels);
  const generate = createGenerateStore(api, onError, () => void settings.getState().load().catch(onError), start);
  // Where a run may go depends on whether it starts from a picture.
  start.subscribe((s, prev) => {
    if (s.picture?.id !== prev.picture?.id) void generate.getState().explain();
  });
  const stores = {
    api,
    app,
    account: createAccountStore(api),
    generate,
    start,
    jobs: createJobsStore(api, onError),
    gallery: createGalleryStore(api, onError),
    settings,
  };
  return stores;
}
export type Stores = ReturnType<typeof createStores>;

/** Subscribes the stores to main-process events; returns the unsubscribe. */
export function connectEvents(s: Stores): () => void {
  let refreshTimer: ReturnType<typeof setTimeout> | null = null;
  const offs = [
    s.api.on('jobs:changed', (job) => {
      const before = s.jobs.getState().jobs[job.id];
      s.jobs.getState().upsert(job);
      if (job.state === 'failed' && before?.state !== 'failed' && job.error) {
        const retryCloud = job.error.offerCloudRetry
          ? { label: 'Retry in the cloud', run: () => void s.jobs.getState().retry(job.id, 'cloud') }
          : undefined;
        s.app
          .getState()
          .toast({ kind: 'error', message: job.error.message, ...(retryCloud ? { action: retryCloud } : {}) });
      }
    }),
    s.api.on('jobs:progressed', (p) => s.jobs.getState().progressed(p)),
    s.api.on('library:changed', () => {
      // Coalesce bursts (a batch of images lands at once) into one reload.
      if (refreshTimer) clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => {
        refreshTimer = null;
        void s.gallery.getState().refresh();
        void s.gallery.getState().loadBoards();
      }, 100);
    }),
    s.api.on('account:changed', (state) => s.account.getState().apply(state)),
    s.api.on('account:exportProgressed', (p) => s.account.getState().exportProgressed(p)),
    s.api.on('models:progressed', (d) => s.settings.getState().downloadProgressed(d)),
    s.api.on('sync:changed', () => void s.settings.getState().loadSync()),
    s.api.on('billing:returned', ({ status }) => {
      void s.account.getState().load();
      s.app
        .getState()
        .toast(
          status === 'success'
            ? { kind: 'success', message: 'Thanks! Your plan was upgraded. It may take a moment to show here.' }
            : { kind: 'info', message: 'Checkout was canceled. Nothing was charged.' },
        );
    }),
  ];
  return () => {
    for (const off of offs) off();
    if (refreshTimer) clearTimeout(refreshTimer);
  };
}

export const StoresContext = createContext<Stores | null>(null);

export function useStores(): Stores {
  const s = useContext(StoresContext);
  if (!s) throw new Error('StoresContext is missing');
  return s;
}

/** `useS(stores.gallery, (g) => g.items)`: a selector hook over one vanilla store. */
export function useS<T, U>(store: StoreApi<T>, selector: (state: T) => U): U {
  return useStore(store, selector);
}
