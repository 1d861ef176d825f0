import type { AccountState } from '@atelier/common';
import { createStore } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';

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
}

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
    };
  });
}
export type AccountStore = ReturnType<typeof createAccountStore>;
