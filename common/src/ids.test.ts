import { describe, expect, it } from 'vitest';
import { idTime, isId, newId } from './ids.ts';

describe('ids', () => {
  it('are prefixed and 22 characters of Crockford base32', () => {
    for (const prefix of ['gen', 'img', 'brd', 'job', 'inp', 'key'] as const) {
      const id = newId(prefix);
      expect(id).toMatch(new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{22}$`));
      expect(isId(prefix, id)).toBe(true);
    }
  });

  it('reject the wrong prefix and malformed bodies', () => {
    expect(isId('img', newId('gen'))).toBe(false);
    expect(isId('gen', 'gen_short')).toBe(false);
    expect(isId('gen', 'gen_ILOUILOUILOUILOUILOUIL')).toBe(false);
    expect(isId('gen', 42)).toBe(false);
  });

  it('sort by creation time, also within one millisecond', () => {
    const t = Date.UTC(2026, 10, 26);
    const ids = [newId('img', t), newId('img', t), newId('img', t), newId('img', t + 1)];
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(4);
    expect(idTime(ids[0]!)).toBe(t);
  });
});
