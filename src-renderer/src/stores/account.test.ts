import { AppError, type AccountState } from '@atelier/common';
import { describe, expect, it } from 'vitest';
import { InMemoryApi } from '../testing/in-memory-api.ts';
import { createAccountStore } from './account.ts';

const signedIn = (email: string): AccountState => ({
  signedIn: true,
  email,
  plan: 'free',
  usage: null,
  online: true,
  pendingConfirmation: null,
  billing: null,
  cloudModels: [],
});
const signedOut: AccountState = { ...signedIn('x'), signedIn: false, email: null, plan: null };

describe('account store: export and delete', () => {
  it('export: preparing, then the download’s progress, then where it was saved', async () => {
    let finish: (v: { path: string; images: number; bytes: number }) => void = () => undefined;
    const api = new InMemoryApi()
      .handle('account:state', () => signedIn('a@example.com'))
      .handle('account:export', () => new Promise((resolve) => (finish = resolve)));
    const store = createAccountStore(api);
    await store.getState().load();
    const running = store.getState().exportData();
    expect(store.getState().exportState).toEqual({ phase: 'preparing', receivedBytes: 0, totalBytes: null });
    store.getState().exportProgressed({ phase: 'downloading', receivedBytes: 50, totalBytes: 200 });
    expect(store.getState().exportState).toEqual({ phase: 'downloading', receivedBytes: 50, totalBytes: 200 });
    // A second click while it runs starts nothing.
    await store.getState().exportData();
    expect(api.callsTo('account:export')).toHaveLength(1);
    finish({ path: '/x/atelier-export.zip', images: 3, bytes: 200 });
    await running;
    expect(store.getState().exportState).toEqual({
      phase: 'saved',
      path: '/x/atelier-export.zip',
      images: 3,
      bytes: 200,
    });
    // Late progress does not move a finished export back.
    store.getState().exportProgressed({ phase: 'downloading', receivedBytes: 10, totalBytes: 200 });
    expect(store.getState().exportState?.phase).toBe('saved');
    // Another account does not see this one's export.
    store.getState().apply(signedIn('b@example.com'));
    expect(store.getState().exportState).toBeNull();
  });

  it('export failure says what the cloud said', async () => {
    const api = new InMemoryApi().handle('account:export', () => {
      throw new AppError('ACCOUNT_DELETED', 'gone');
    });
    const store = createAccountStore(api);
    await store.getState().exportData();
    expect(store.getState().exportState).toEqual({
      phase: 'failed',
      message: new AppError('ACCOUNT_DELETED', 'gone').userMessage,
    });
  });

  it('delete: sends the typed email and password, then shows the signed-out state; a refusal propagates', async () => {
    let state = signedIn('a@example.com');
    const api = new InMemoryApi()
      .handle('account:state', () => state)
      .handle('account:delete', ({ password }) => {
        if (password !== 'right') throw new AppError('REAUTH_FAILED', 'no');
        state = signedOut;
        return { ok: true };
      });
    const store = createAccountStore(api);
    await store.getState().load();
    await expect(store.getState().deleteAccount('a@example.com', 'wrong')).rejects.toMatchObject({
      code: 'REAUTH_FAILED',
    });
    expect(store.getState().state?.signedIn).toBe(true);
    await store.getState().deleteAccount('a@example.com', 'right');
    expect(api.callsTo('account:delete')).toEqual([
      { email: 'a@example.com', password: 'wrong' },
      { email: 'a@example.com', password: 'right' },
    ]);
    expect(store.getState().state?.signedIn).toBe(false);
    expect(store.getState().view).toBe('signIn');
  });
});
