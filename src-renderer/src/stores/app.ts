import { createStore } from 'zustand/vanilla';
import type { ConnectionState } from '../bridge.ts';
import { userMessageOf } from '../lib/field-errors.ts';

export type Screen = 'generate' | 'queue' | 'gallery' | 'account' | 'settings';

export interface ToastAction {
  label: string;
  run: () => void;
}
export interface Toast {
  id: number;
  kind: 'info' | 'success' | 'error';
  message: string;
  action?: ToastAction;
  /** Unit: milliseconds until it goes away by itself; null keeps it until dismissed. */
  timeoutMs: number | null;
}

export interface AppState {
  screen: Screen;
  connection: ConnectionState;
  toasts: Toast[];
  /** Open modal dialogs, innermost last: toasts render inside it so they stay on top and usable. */
  overlays: HTMLElement[];
  pushOverlay(el: HTMLElement): void;
  popOverlay(el: HTMLElement): void;
  navigate(screen: Screen): void;
  setConnection(state: ConnectionState): void;
  toast(t: Omit<Toast, 'id' | 'timeoutMs'> & { timeoutMs?: number | null }): number;
  dismiss(id: number): void;
  /** Shows any thrown value as a toast with its user message. */
  reportError(error: unknown, action?: ToastAction): void;
}

export function createAppStore() {
  let nextToast = 1;
  return createStore<AppState>()((set, get) => ({
    screen: 'generate',
    connection: 'open',
    toasts: [],
    overlays: [],
    pushOverlay: (el) => set({ overlays: [...get().overlays.filter((x) => x !== el), el] }),
    popOverlay: (el) => set({ overlays: get().overlays.filter((x) => x !== el) }),
    navigate: (screen) => set({ screen }),
    setConnection: (connection) => set({ connection }),
    toast: (t) => {
      const id = nextToast++;
      const toast: Toast = { timeoutMs: t.kind === 'error' ? 10_000 : 6_000, ...t, id };
      set({ toasts: [...get().toasts.slice(-4), toast] });
      return id;
    },
    dismiss: (id) => set({ toasts: get().toasts.filter((t) => t.id !== id) }),
    reportError: (error, action) => {
      if (!(error instanceof Error) || error.name !== 'AppError') console.error(error);
      get().toast({ kind: 'error', message: userMessageOf(error), ...(action ? { action } : {}) });
    },
  }));
}
export type AppStore = ReturnType<typeof createAppStore>;
