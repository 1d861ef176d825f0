/**
 * Prefixed, branded ids. The body is 10 characters of millisecond time followed by 12 random
 * characters (Crockford base32), so ids sort by creation time and work as pagination cursors.
 */
declare const brand: unique symbol;

export const ID_PREFIXES = {
  generation: 'gen',
  image: 'img',
  board: 'brd',
  job: 'job',
  input: 'inp',
  apiKey: 'key',
} as const;
/** Webhooks (issue 16): endpoints, deliveries and the events they carry. */
export const WEBHOOK_ID_PREFIXES = { endpoint: 'whk', delivery: 'whd', event: 'evt' } as const;
export type IdPrefix =
  (typeof ID_PREFIXES)[keyof typeof ID_PREFIXES] | (typeof WEBHOOK_ID_PREFIXES)[keyof typeof WEBHOOK_ID_PREFIXES];
export type Id<P extends IdPrefix> = string & { readonly [brand]: P };

export type GenerationId = Id<'gen'>;
export type ImageId = Id<'img'>;
export type BoardId = Id<'brd'>;
export type JobId = Id<'job'>;
/** A starting image or mask uploaded to the cloud (issue 15). */
export type InputId = Id<'inp'>;

/** Web Crypto is global in every runtime common/ runs in (browser, Node ≥ 19, Electron). */
export const webCrypto = (
  globalThis as unknown as { crypto: { getRandomValues<T extends Uint8Array | Uint32Array>(a: T): T } }
).crypto;

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_LEN = 10;
const RANDOM_LEN = 12;
const ID_BODY = new RegExp(`^[${ALPHABET}]{${TIME_LEN + RANDOM_LEN}}$`);

let lastTime = -1;
let lastRandom: number[] = [];

function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < TIME_LEN; i++) {
    out = ALPHABET[t % 32]! + out;
    t = Math.floor(t / 32);
  }
  return out;
}

function randomDigits(): number[] {
  const bytes = new Uint8Array(RANDOM_LEN);
  webCrypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b % 32);
}

/** Monotonic within one process: ids made in the same millisecond still sort in creation order. */
export function newId<P extends IdPrefix>(prefix: P, now: number = Date.now()): Id<P> {
  let digits: number[];
  if (now === lastTime) {
    digits = [...lastRandom];
    let i = RANDOM_LEN - 1;
    while (i >= 0 && digits[i] === 31) digits[i--] = 0;
    if (i >= 0) digits[i] = digits[i]! + 1;
  } else {
    digits = randomDigits();
  }
  lastTime = now;
  lastRandom = digits;
  return `${prefix}_${encodeTime(now)}${digits.map((d) => ALPHABET[d]).join('')}` as Id<P>;
}

export function isId<P extends IdPrefix>(prefix: P, value: unknown): value is Id<P> {
  return typeof value === 'string' && value.startsWith(`${prefix}_`) && ID_BODY.test(value.slice(prefix.length + 1));
}

/** The creation time encoded in an id, in milliseconds since the epoch. */
export function idTime(id: string): number {
  const body = id.slice(id.indexOf('_') + 1, id.indexOf('_') + 1 + TIME_LEN);
  let t = 0;
  for (const ch of body) t = t * 32 + ALPHABET.indexOf(ch);
  return t;
}
