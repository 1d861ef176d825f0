import { describe, expect, it } from 'vitest';
import { overLimitText, syncHeadline, type SyncStatus } from './SyncIndicator.tsx';

const status = (over: Partial<SyncStatus> = {}): SyncStatus => ({
  enabled: true,
  state: 'idle',
  lastSyncAt: null,
  pending: 0,
  error: null,
  progress: { done: 0, total: 0 },
  errorCode: null,
  paused: false,
  storage: { used: 1024 ** 3, limit: 2 * 1024 ** 3 },
  pendingBytes: 0,
  overLimit: null,
  ...over,
});

describe('the shell’s sync line', () => {
  it.each([
    [status(), 'Gallery in sync', 'ok'],
    [status({ pending: 3 }), '3 waiting to sync', 'ok'],
    [status({ state: 'syncing', progress: { done: 3, total: 10 } }), 'Syncing 3 of 10', 'busy'],
    [status({ state: 'syncing' }), 'Syncing…', 'busy'],
    [status({ state: 'paused', paused: true }), 'Sync paused', 'warn'],
    [status({ state: 'offline' }), 'Offline: will sync when back', 'warn'],
    [status({ state: 'error', error: 'x' }), 'Sync failed', 'error'],
    [status({ state: 'error', error: 'x', errorCode: 'QUOTA_STORAGE_EXCEEDED' }), 'Cloud storage full', 'error'],
    [status({ enabled: false, state: 'paused' }), 'Sync off', 'warn'],
    [status({ overLimit: { images: 2, bytes: 5_000_000 } }), 'Cloud storage full', 'error'],
  ] as const)('%#: says "%s"', (s, text, tone) => {
    expect(syncHeadline(s)).toEqual({ text, tone });
  });

  it('names what does not fit, how full storage is, and that the images stay here', () => {
    expect(overLimitText(status())).toBeNull();
    const text = overLimitText(status({ overLimit: { images: 2, bytes: 3 * 1024 * 1024 } }))!;
    expect(text).toMatch(/^2 images \(3(\.0)? MB\) will not fit in your cloud storage/);
    expect(text).toMatch(/1(\.0)? GB of 2(\.0)? GB used/);
    expect(text).toMatch(/stay on this computer; upgrade/);
  });
});
