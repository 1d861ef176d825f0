/**
 * The API key format (docs/decisions/0160): `atl_` + 43 base62 characters of a 32-byte random
 * secret + 6 base62 characters of its CRC-32. The fixed prefix lets secret scanners recognise a
 * leaked key; the checksum lets the API refuse a mistyped or truncated key without a database
 * lookup. Base62 (no `-` or `_`) keeps a double-click selecting the whole key.
 *
 * Stored: SHA-256 of the whole key. The secret has 256 bits of entropy, so there is nothing for a
 * slow KDF to protect (it would only make every request slower); a lookup is one index probe.
 */
import { API_KEY_PATTERN, API_KEY_PREFIX, API_KEY_PREFIX_CHARS } from '@atelier/common';
import { createHash, hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SECRET_CHARS = 43; // ceil(256 / log2(62))
const CHECK_CHARS = 6; // ceil(32 / log2(62))

function base62(bytes: Buffer, width: number): string {
  let n = BigInt(`0x${bytes.toString('hex') || '0'}`);
  let out = '';
  while (n > 0n) {
    out = BASE62[Number(n % 62n)]! + out;
    n /= 62n;
  }
  return out.padStart(width, '0');
}

/** The CRC-32 in base62, with number arithmetic (it is checked on every uncached request). */
function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  while (n > 0) {
    out = BASE62[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out.padStart(CHECK_CHARS, '0');
}

export interface NewApiKey {
  /** The whole key: shown to the user once, never stored. */
  key: string;
  /** `atl_` and the first characters of the secret: stored and shown to tell keys apart. */
  prefix: string;
  /** SHA-256 of the whole key: what is stored and looked up. */
  hash: Buffer;
}

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** The same SHA-256 in base64, in one call (no Hash object): what every request computes. */
export function apiKeyHashBase64(key: string): string {
  return hash('sha256', key, 'base64');
}

export function newApiKey(random: (n: number) => Buffer = randomBytes): NewApiKey {
  const body = base62(random(32), SECRET_CHARS);
  const key = `${API_KEY_PREFIX}${body}${checksum(body)}`;
  return { key, prefix: key.slice(0, API_KEY_PREFIX.length + API_KEY_PREFIX_CHARS), hash: hashApiKey(key) };
}

/** True when the string starts like a key (so the bearer value is not a JWT). */
export function looksLikeApiKey(bearer: string): boolean {
  return bearer.startsWith(API_KEY_PREFIX);
}

/** True when the string is a well-formed key whose checksum matches (it may still be unknown). */
export function isWellFormedApiKey(key: string): boolean {
  if (!API_KEY_PATTERN.test(key)) return false;
  const body = key.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + SECRET_CHARS);
  return key.slice(API_KEY_PREFIX.length + SECRET_CHARS) === checksum(body);
}
