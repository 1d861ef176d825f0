import type { AccountState, IpcEventPayload } from '@atelier/common';
import { createStore } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';
import { userMessageOf } from '../lib/field-errors.ts';

export type AccountView = 'signIn' | 'signUp' | 'confirm' | 'forgot' | 'reset';

export interface AccountStoreState {
  state: AccountState | null;
  view: AccountView;
  /** The email being signed up / confirmed / reset, carried between views. */
  email: string;
  busy: boolean;
  load(): Promise<void>;
  setView(view: AccountView): void;
  setEmail(email: string): void;
  apply(state: AccountState): void;
  signUp(email: string, password: string): Promise<void>;
  confirm(email: string, code: string): Promise<void>;
  resendCode(email: string): Promise<void>;
  signIn(email: string, password: string): Promise<void>;
  signOut(): Promise<void>;
  forgot(email: string): Promise<void>;
  reset(email: string, code: string, password: string): Promise<void>;
  upgrade(): Promise<string>;
  manage(): Promise<string>;
  /** "Export my data": null when none ran yet in this session. */
  exportState: ExportState | null;
  exportData(): Promise<void>;
  exportProgressed(p: IpcEventPayload<'account:exportProgressed'>): void;
  /** Deletes the cloud account (the cloud re-checks the password); signs out on success. */
  deleteAccount(email: string, password: string): Promise<void>;
}

export type ExportState =
  | { phase: 'preparing' | 'downloading'; receivedBytes: number; totalBytes: number | null }
  | { phase: 'saved'; path: string; images: number; bytes: number }
  | { phase: 'failed'; message: string };

export function createAccountStore(api: Api) {
  return createStore<AccountStoreState>()((set, get) => {
    /** Runs an account call with the busy flag; errors propagate to the form that made them. */
    async function busy<T>(fn: () => Promise<T>): Promise<T> {
      set({ busy: true });
      try {
        return await fn();
      } finally {
        set({ busy: false });
      }
    }
    return {
      state: null,
      view: 'signIn',
      email: '',
      busy: false,
      async load() {
        const state = await api.invoke('account:state', {});
        get().apply(state);
      },
      setView: (view) => set({ view }),
      setEmail: (email) => set({ email }),
      apply(state) {
        const next: Partial<AccountStoreState> = { state };
        // An export belongs to the account that made it: another account (or none) starts clean.
        const before = get().state;
        if (!state.signedIn || (before !== null && before.email !== state.email)) next.exportState = null;
        if (state.pendingConfirmation && !state.signedIn) {
          next.view = 'confirm';
          next.email = state.pendingConfirmation;
        }
        set(next);
      },
      signUp: (email, password) =>
        busy(async () => {
          const r = await api.invoke('account:signUp', { email, password });
          set({ email, view: r.needsConfirmation ? 'confirm' : 'signIn' });
        }),
      confirm: (email, code) =>
        busy(async () => {
          await api.invoke('account:confirm', { email, code });
          set({ view: 'signIn', email });
          await get().load();
        }),
      resendCode: (email) => busy(async () => void (await api.invoke('account:resendCode', { email }))),
      signIn: (email, password) =>
        busy(async () => {
          const state = await api.invoke('account:signIn', { email, password });
          set({ email });
          get().apply(state);
        }),
      signOut: () =>
        busy(async () => {
          await api.invoke('account:signOut', {});
          set({ view: 'signIn' });
          await get().load();
        }),
      forgot: (email) =>
        busy(async () => {
          await api.invoke('account:forgotPassword', { email });
          set({ email, view: 'reset' });
        }),
      reset: (email, code, password) =>
        busy(async () => {
          await api.invoke('account:resetPassword', { email, code, password });
          set({ email, view: 'signIn' });
        }),
      upgrade: () => busy(async () => (await api.invoke('billing:upgrade', {})).url),
      manage: () => busy(async () => (await api.invoke('billing:manage', {})).url),
      exportState: null,
      async exportData() {
        const running = get().exportState;
        if (running && (running.phase === 'preparing' || running.phase === 'downloading')) return;
        set({ exportState: { phase: 'preparing', receivedBytes: 0, totalBytes: null } });
        try {
          const r = await api.invoke('account:export', {});
          set({ exportState: { phase: 'saved', path: r.path, images: r.images, bytes: r.bytes } });
        } catch (e) {
          set({ exportState: { phase: 'failed', message: userMessageOf(e) } });
        }
      },
      exportProgressed(p) {
        const cur = get().exportState;
        // Progress only moves a running export; the handler's answer decides 'saved'.
        if (!cur || (cur.phase !== 'preparing' && cur.phase !== 'downloading') || p.phase === 'saved') return;
        set({ exportState: { phase: p.phase, receivedBytes: p.receivedBytes, totalBytes: p.totalBytes } });
      },
      deleteAccount: (email, password) =>
        busy(async () => {
          await api.invoke('account:delete', { email, password });
          set({ view: 'signIn', exportState: null });
          await get().load();
        }),
    };
  });
}
export type AccountStore = ReturnType<typeof createAccountStore>;
