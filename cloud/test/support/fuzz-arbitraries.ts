/**
 * fast-check arbitraries for fuzzing the cloud API from its own OpenAPI document: values that
 * follow a JSON schema, values at and just past its bounds, and hostile ones (NUL, unpaired
 * surrogates, RTL overrides, 4-byte characters, very long strings, wrong types), plus URL and
 * body encodings a well-behaved client would never send.
 */
import fc from 'fast-check';

/** The subset of JSON Schema that @fastify/swagger emits for our zod schemas. */
export interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
}

/** Characters that have broken servers before: Postgres refuses NUL, JSON allows lone surrogates. */
export const NASTY_CHARS = [
  '\u0000',
  '\uD800', // unpaired high surrogate
  '\uDFFF', // unpaired low surrogate
  '\u202E', // right-to-left override
  '\u200F', // right-to-left mark
  'مرحبا', // RTL text
  '😀', // 4-byte UTF-8, 2 UTF-16 units
  '𝕏',
  '画', // 3-byte UTF-8
  '\uFEFF',
  '\u0085',
  '\r\n',
  '%',
  '%00',
  "'",
  '"',
  '\\',
  '../',
  '<script>',
  '${x}',
  ' ',
] as const;

/** Any string, biased to the characters above; UTF-16 units are drawn singly so surrogates come unpaired. */
export const nastyString = (maxLength = 64): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.array(fc.constantFrom(...NASTY_CHARS), { maxLength: 6 }).map((a) => a.join('')) },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.integer({ min: 0, max: 0xffff }), { maxLength })
        .map((units) => String.fromCharCode(...units)),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength }) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', 'undefined', '0', '-1', 'true', '[]', '{}') },
  );

/** Strings at and past a length bound, in characters that weigh 1, 2 (UTF-16) and 3–4 (UTF-8) units. */
const boundaryStrings = (s: JsonSchema): fc.Arbitrary<string> => {
  const lengths = [s.minLength ?? 0, Math.max(0, (s.minLength ?? 0) - 1)];
  if (s.maxLength !== undefined) lengths.push(s.maxLength, s.maxLength + 1);
  else lengths.push(10_000);
  return fc
    .tuple(fc.constantFrom(...lengths), fc.constantFrom('a', '画', '😀', '\u0000', '\uD800', 'é'))
    .map(([n, ch]) => ch.repeat(ch.length === 2 ? Math.ceil(n / 2) : n));
};

/** Values of the wrong JSON type. */
export const wrongType: fc.Arbitrary<unknown> = fc.constantFrom(
  null,
  true,
  false,
  0,
  -1,
  1.5,
  '1',
  '',
  [],
  [1],
  {},
  { $gt: '' },
  '9'.repeat(400),
  1e308,
  -1e308,
  Number.MAX_SAFE_INTEGER + 2,
);

const numberBounds = (s: JsonSchema): number[] => {
  const out = [0, -1, 1, 0.5, -0, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53)];
  for (const b of [s.minimum, s.maximum, s.exclusiveMinimum, s.exclusiveMaximum])
    if (typeof b === 'number' && Number.isFinite(b)) out.push(b, b - 1, b + 1, b - 0.5, b + 0.5);
  return out;
};

const typeOf = (s: JsonSchema): string | undefined => (Array.isArray(s.type) ? s.type[0] : s.type);

/**
 * A value for `schema`: mostly one that follows it (so requests reach the handlers, not only the
 * validator), often one at or just past a bound, sometimes a hostile or wrongly typed one.
 */
export function valueFor(schema: JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  const alts: { weight: number; arbitrary: fc.Arbitrary<unknown> }[] = [];
  const valid = validValue(schema, depth);
  if (valid) alts.push({ weight: 5, arbitrary: valid });
  const t = typeOf(schema);
  if (t === 'string')
    alts.push({ weight: 2, arbitrary: boundaryStrings(schema) }, { weight: 2, arbitrary: nastyString() });
  if (t === 'integer' || t === 'number') alts.push({ weight: 3, arbitrary: fc.constantFrom(...numberBounds(schema)) });
  alts.push({ weight: 1, arbitrary: wrongType });
  if (schema.nullable) alts.push({ weight: 1, arbitrary: fc.constant(null) });
  return fc.oneof(...alts);
}

function validValue(schema: JsonSchema, depth: number): fc.Arbitrary<unknown> | null {
  const union = schema.anyOf ?? schema.oneOf;
  if (union?.length) return fc.oneof(...union.map((s) => valueFor(s, depth)));
  if (schema.enum?.length) return fc.constantFrom(...schema.enum);
  switch (typeOf(schema)) {
    case 'string': {
      const maxLength = schema.maxLength ?? 300;
      const minLength = schema.minLength ?? 0;
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
      return fc.string({ unit: 'grapheme', minLength, maxLength: Math.min(maxLength, 300) });
    }
    case 'integer': {
      const min = Math.max(schema.minimum ?? -(2 ** 31), Number.MIN_SAFE_INTEGER);
      const max = Math.min(schema.maximum ?? 2 ** 31, Number.MAX_SAFE_INTEGER);
      // Round numbers too: some rules live outside the document (image sides are multiples of 8).
      return fc.oneof(
        fc.integer({ min, max }),
        fc.integer({ min: Math.ceil(min / 8), max: Math.floor(max / 8) }).map((n) => n * 8),
      );
    }
    case 'number':
      return fc.double({
        min: schema.minimum ?? -1e6,
        max: schema.maximum ?? 1e6,
        noNaN: true,
        noDefaultInfinity: true,
      });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return depth > 3 ? fc.constant([]) : fc.array(valueFor(schema.items ?? {}, depth + 1), { maxLength: 4 });
    case 'object':
      return depth > 3 ? fc.constant({}) : objectFor(schema, depth + 1);
    default:
      return null;
  }
}

/** An object that follows the schema: required properties present, optional ones sometimes, every value valid. */
export function validObjectFor(schema: JsonSchema, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties ?? {}).map(([name, s]) => {
    const v = validValue(s, depth) ?? fc.constant(s.default ?? null);
    return (required.has(name) ? v.map((x) => ({ present: true, x })) : fc.record({ present: fc.boolean(), x: v })).map(
      (f) => [name, f] as const,
    );
  });
  return fc.tuple(...fields).map((entries) => {
    const o: Record<string, unknown> = {};
    for (const [name, f] of entries) if (f.present) o[name] = f.x;
    return o;
  });
}

/** A valid value for `schema` when it can build one, else anything `valueFor` gives. */
export const validValueFor = (schema: JsonSchema): fc.Arbitrary<unknown> => validValue(schema, 0) ?? valueFor(schema);

/** An object whose each property is present or not, with now and then an extra one or a required one missing. */
export function objectFor(schema: JsonSchema, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const props = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  const fields = props.map(([name, s]) =>
    fc
      .oneof(
        { weight: required.has(name) ? 8 : 3, arbitrary: valueFor(s, depth).map((v) => ({ present: true, v })) },
        { weight: 1, arbitrary: fc.constant({ present: false, v: undefined as unknown }) },
      )
      .map((f) => [name, f] as const),
  );
  // An extra property one time in four.
  const extra = fc.oneof(
    { weight: 3, arbitrary: fc.constant(null) },
    {
      weight: 1,
      arbitrary: fc.tuple(
        fc.constantFrom('__proto__', 'constructor', 'userId', 'user_id', 'id', 'extra', '\u0000'),
        wrongType,
      ),
    },
  );
  return fc.tuple(fc.tuple(...fields), extra).map(([entries, more]) => {
    const o: Record<string, unknown> = {};
    for (const [name, f] of entries) if (f.present) o[name] = f.v;
    if (more)
      Object.defineProperty(o, more[0], { value: more[1], enumerable: true, writable: true, configurable: true });
    return o;
  });
}

/**
 * Percent-encodes a string for a URL the way a sloppy or hostile client might: UTF-8 where it can,
 * an unpaired surrogate as its (invalid) 3-byte form, NUL as %00.
 */
export function percentEncode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    if (pair) {
      out += encodeURIComponent(s.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff)
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map(hex).join('');
    else out += encodeURIComponent(s[i]!);
  }
  return out;
}
const hex = (b: number) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`;

/** A URL segment or query value: encoded text, raw bytes (not UTF-8), or broken percent-escapes. */
export const urlComponent = (text: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: text.map(percentEncode) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => [...b].map(hex).join('')) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('%', '%G1', '%E0%A4', '%C0%80', '%ED%A0%80', '%FF%FE', 'a%2Fb', '..', '%2e%2e'),
    },
    { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'x'.repeat(n)) },
  );

export type BodyEncoding =
  | { kind: 'json' }
  | { kind: 'none' }
  | { kind: 'content-type'; contentType: string | undefined }
  | { kind: 'raw'; contentType: string; bytes: Uint8Array };

/** How the body goes on the wire: mostly JSON, otherwise a wrong content type, charset, encoding or bytes. */
export const bodyEncoding: fc.Arbitrary<BodyEncoding> = fc.oneof(
  { weight: 20, arbitrary: fc.constant({ kind: 'json' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        undefined,
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=utf-16le',
        'application/json; charset=latin1',
        'application/xml',
        'application/json, text/plain',
        'APPLICATION/JSON',
      )
      .map((contentType) => ({ kind: 'content-type' as const, contentType })),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc
          .constantFrom(
            '',
            '{',
            'null',
            '[]',
            '"x"',
            '1e999',
            '{"a":1,"a":2}',
            '{"__proto__":{"admin":true}}',
            '{"constructor":{"prototype":{"x":1}}}',
            '{"prompt":"\\ud800"}',
            '{"prompt":"\\u0000"}',
            '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
          )
          .map((s) => new TextEncoder().encode(s)),
        fc.uint8Array({ minLength: 1, maxLength: 64 }), // not UTF-8 at all
        fc.constant(Uint8Array.from([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])), // {"p":"<bad utf-8>"}
      )
      .map((bytes) => ({ kind: 'raw' as const, contentType: 'application/json', bytes })),
  },
);
