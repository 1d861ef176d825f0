import { AppError } from '@atelier/common';
import { describe, expect, it } from 'vitest';
import { reconnectDelay, takeToken, unwrapEnvelope } from './bridge.ts';

describe('bridge envelopes', () => {
  it('returns the value of a successful call, checked against the contract', () => {
    const out = unwrapEnvelope('library:undoDelete', { ok: true, value: { restored: 3 } });
    expect(out).toEqual({ restored: 3 });
  });
  it('rebuilds the AppError of a failed call, with its user message and details', () => {
    const envelope = {
      ok: false,
      error: {
        code: 'QUOTA_EXCEEDED',
        message: 'over',
        userMessage: 'No images left.',
        retryable: false,
        details: { limit: 100 },
      },
    };
    try {
      unwrapEnvelope('jobs:submit', envelope);
      expect.unreachable();
    } catch (e) {
      expect(AppError.is(e, 'QUOTA_EXCEEDED')).toBe(true);
      expect((e as AppError).userMessage).toBe('No images left.');
      expect((e as AppError).details).toEqual({ limit: 100 });
    }
  });
  it('treats replies that break the contract as internal errors, not data', () => {
    expect(() => unwrapEnvelope('library:undoDelete', { ok: true, value: { restored: 'many' } })).toThrow(
      /does not match the contract/,
    );
    expect(() => unwrapEnvelope('library:undoDelete', 'nonsense')).toThrow(AppError);
  });
});

describe('bridge connection', () => {
  it('backs off from 250 ms to at most 5 s', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map(reconnectDelay)).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
  });
  it('takes the token from the address, and remembers it for reloads in this tab', () => {
    const store = new Map<string, string>();
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
    } as unknown as Storage;
    expect(takeToken({ hash: '#token=abc%2Fdef' } as Location, storage)).toBe('abc/def');
    expect(takeToken({ hash: '#/gallery' } as Location, storage)).toBe('abc/def');
    expect(takeToken({ hash: '' } as Location, null)).toBeNull();
  });
});
