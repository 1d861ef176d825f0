/**
 * Text that crosses a trust boundary. Postgres refuses NUL in text and jsonb, and an unpaired
 * UTF-16 surrogate cannot be encoded as UTF-8 (it is stored as U+FFFD or refused, depending on the
 * path), so both are refused here, in the shared schemas, with a message a person can act on —
 * never a 500 from the database.
 */
import { z } from 'zod';

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function hasNul(s: string): boolean {
  return s.includes('\u0000');
}

export function hasUnpairedSurrogate(s: string): boolean {
  return UNPAIRED_SURROGATE.test(s);
}

/** True when the string can be stored as text by Postgres and encoded as UTF-8 unchanged. */
export function isStorableText(s: string): boolean {
  return !hasNul(s) && !hasUnpairedSurrogate(s);
}

/**
 * Adds the storable-text checks to a string schema; `name` goes into the messages
 * ("prompt must not contain NUL characters").
 */
export function storable<S extends z.ZodString>(schema: S, name: string): S {
  return schema
    .refine((s) => !hasNul(s), `${name} must not contain NUL characters`)
    .refine(
      (s) => !hasUnpairedSurrogate(s),
      `${name} contains a broken character (an unpaired UTF-16 surrogate); retype or remove it`,
    ) as S;
}

/** A string of at most `max` characters that Postgres can store. */
export const storableString = (name: string, max: number) =>
  storable(z.string().max(max, `${name} must be at most ${max} characters`), name);
