import { API_KEY_PATTERN } from '@atelier/common';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { apiKeyHashBase64, hashApiKey, isWellFormedApiKey, looksLikeApiKey, newApiKey } from './key-format.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

describe('API key format', () => {
  it('makes distinct, well-formed keys with their prefix and SHA-256', () => {
    const keys = Array.from({ length: 500 }, () => newApiKey());
    expect(new Set(keys.map((k) => k.key)).size).toBe(500);
    for (const k of keys) {
      expect(k.key).toMatch(API_KEY_PATTERN);
      expect(isWellFormedApiKey(k.key)).toBe(true);
      expect(looksLikeApiKey(k.key)).toBe(true);
      expect(k.prefix).toBe(k.key.slice(0, 12));
      expect(k.hash).toEqual(createHash('sha256').update(k.key).digest());
      expect(hashApiKey(k.key)).toEqual(k.hash);
      expect(apiKeyHashBase64(k.key)).toBe(k.hash.toString('base64'));
    }
  });

  it('keeps the full width when the secret starts with zero bytes (all zeros, all ones)', () => {
    for (const fill of [0x00, 0xff]) {
      const k = newApiKey((n) => Buffer.alloc(n, fill));
      expect(k.key).toHaveLength(53);
      expect(isWellFormedApiKey(k.key)).toBe(true);
    }
    expect(newApiKey((n) => Buffer.alloc(n, 0)).key.slice(4, 47)).toBe('0'.repeat(43));
  });

  it('refuses every single-character change, truncation and extension by the checksum or the shape', () => {
    const { key } = newApiKey();
    for (let i = 4; i < key.length; i++) {
      const other = BASE62[(BASE62.indexOf(key[i]!) + 1 + (i % 61)) % 62]!;
      expect(isWellFormedApiKey(key.slice(0, i) + other + key.slice(i + 1)), `position ${i}`).toBe(false);
    }
    expect(isWellFormedApiKey(key.slice(0, -1))).toBe(false);
    expect(isWellFormedApiKey(`${key}0`)).toBe(false);
    expect(isWellFormedApiKey(key.replace('atl_', 'atk_'))).toBe(false);
    expect(looksLikeApiKey('eyJhbGciOiJSUzI1NiJ9.e30.x')).toBe(false);
  });

  it('writes the checksum as base62 of the CRC-32, as keys already issued carry it', () => {
    const bigBase62 = (n: bigint) => {
      let out = '';
      for (; n > 0n; n /= 62n) out = BASE62[Number(n % 62n)]! + out;
      return out.padStart(6, '0');
    };
    for (let i = 0; i < 2000; i++) {
      const { key } = newApiKey();
      expect(key.slice(47)).toBe(bigBase62(BigInt(crc32(key.slice(4, 47)))));
    }
    // The extremes of a 32-bit CRC: width kept, no rounding.
    for (const fill of [0x00, 0x11, 0xff]) {
      const { key } = newApiKey((n) => Buffer.alloc(n, fill));
      expect(key.slice(47)).toBe(bigBase62(BigInt(crc32(key.slice(4, 47)))));
    }
  });
});
