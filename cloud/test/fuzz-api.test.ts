/**
 * Property-based fuzzing of every route in the API's own OpenAPI document (GET /openapi.json),
 * on real Postgres (RLS), cognito-local and s3rver.
 *
 * For each operation fast-check builds requests from the operation's schemas: path ids that
 * exist (the caller's or another user's), ids of the right shape and hostile ones; query values,
 * headers and JSON bodies that follow the schema, sit at or just past each bound, or are hostile
 * (NUL, unpaired surrogates, RTL, 4-byte characters, very long, wrong types, missing and extra
 * fields); bodies in wrong content types, charsets and bytes; and no, a forged or another user's
 * token. Invariants, on every response:
 *   - the status is one the document lists for that operation (so never an undocumented 500);
 *   - an error status carries exactly `{ error: { code, message, details? } }`, with a known code
 *     whose table status is the response status;
 *   - on any 4xx (and 5xx) nothing was written: every public table's contents, the pg-boss job
 *     count and the seeded objects in the bucket are unchanged.
 *
 * Budget: FUZZ_RUNS runs per operation (default 12) plus 8 fixed edge cases each, ~400 requests
 * in all; FUZZ_REPORT=<file> lists every breach and the statuses seen per route. A failure prints the
 * seed and the shrunk request; rerun it with FUZZ_SEED=<seed> (and FUZZ_PATH=<path> if needed).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { ERROR_CODE_LIST, httpStatusFor, newId, type ErrorCode, type ImageId } from '@atelier/common';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertImages } from '../src/db/gallery/images-repository.ts';
import { withSystemTx } from '../src/db/tx.ts';
import { PGBOSS_SCHEMA } from '../src/queue/pg-boss-job-queue.ts';
import { imageObjectKey, thumbObjectKey, type ObjectKey } from '../src/storage/keys.ts';
import type { S3ObjectStore } from '../src/storage/s3-object-store.ts';
import {
  bodyEncoding,
  nastyString,
  objectFor,
  percentEncode,
  urlComponent,
  validObjectFor,
  validValueFor,
  valueFor,
  type BodyEncoding,
  type JsonSchema,
} from './support/fuzz-arbitraries.ts';
import { startTestS3, type TestS3 } from './support/s3.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  forgeToken,
  strangerKey,
  type TestApp,
  type TestUser,
} from './support/index.ts';
import { fixtureMetadata } from './support/metadata.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 12);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const ONLY_PATH = process.env.FUZZ_PATH;
const ERROR_CODES = new Set<string>(ERROR_CODE_LIST);
/** FUZZ_REPORT=<file>: record every breach there (one per route and kind) instead of stopping at the first. */
const REPORT = process.env.FUZZ_REPORT;
const breaches = new Map<string, string>();
/** Statuses seen per operation (written to FUZZ_REPORT too, to see how deep the requests got). */
const seen = new Map<string, Map<number, number>>();

interface Operation {
  method: string;
  path: string;
  parameters: { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: JsonSchema }[];
  body: JsonSchema | null;
  bodyRequired: boolean;
  statuses: Set<number>;
  secured: boolean;
}

let t: TestApp;
let s3: TestS3;
let store: S3ObjectStore;
let alice: TestUser;
let bob: TestUser;
let forged: string;
const ids = { alice: [] as string[], bob: [] as string[] };
const objectKeys: ObjectKey[] = [];
let operations: Operation[] = [];

const meta = (prompt: string) => fixtureMetadata(prompt);

async function seedImage(user: TestUser, prompt: string): Promise<ImageId> {
  const id = newId('img');
  const png = new TextEncoder().encode(`png of ${prompt}`);
  const [key, thumb] = [imageObjectKey(user.sub, id), thumbObjectKey(user.sub, id, 'image/png')];
  await store.put(key, png, { contentType: 'image/png' });
  await store.put(thumb, png, { contentType: 'image/png' });
  objectKeys.push(key, thumb);
  await withSystemTx(t.systemPool, (tx) =>
    insertImages(tx, user.sub, [
      {
        id,
        generationId: null,
        batchIndex: null,
        width: 64,
        height: 64,
        metadata: meta(prompt),
        size: png.byteLength,
        sha256: createHash('sha256').update(png).digest('hex'),
        thumbMime: 'image/png',
      },
    ]),
  );
  return id;
}

/** Everything a request could have written: each public table's rows, queued jobs, seeded objects. */
async function snapshot(): Promise<Record<string, unknown>> {
  const tables = await t.adminPool.query<{ tablename: string }>(
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
  );
  const digests = tables.rows.map(
    ({ tablename }) =>
      `(SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM public."${tablename}" x) AS "${tablename}"`,
  );
  const r = await t.adminPool.query(
    `SELECT ${digests.join(', ')}, (SELECT count(*)::int FROM ${PGBOSS_SCHEMA}.job) AS "pgboss.job"`,
  );
  const objects = await Promise.all(objectKeys.map(async (k) => [k, (await store.head(k))?.size ?? null] as const));
  return { ...r.rows[0], objects: Object.fromEntries(objects) };
}

beforeAll(async () => {
  s3 = await startTestS3('fuzz-test');
  store = s3.store();
  const db = await createTestDatabase({ S3_ENDPOINT: s3.endpoint, S3_BUCKET: s3.bucket });
  t = await buildTestApp({ db, overrides: { objectStore: store } });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  forged = await forgeToken(await strangerKey(), { sub: alice.sub });
  for (const [who, u] of [
    ['alice', alice],
    ['bob', bob],
  ] as const) {
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: auth(u) })).statusCode).toBe(200);
    const board = await t.app.inject({ method: 'POST', url: '/v1/boards', headers: auth(u), payload: { name: who } });
    expect(board.statusCode).toBe(201);
    const gen = await t.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: auth(u),
      payload: { prompt: `a portrait of ${who}`, width: 64, height: 64, steps: 1 },
    });
    expect(gen.statusCode).toBe(202);
    ids[who].push(board.json().id, gen.json().id, await seedImage(u, `${who} one`), await seedImage(u, `${who} two`));
  }
  const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, Record<string, unknown>>>;
    security?: unknown[];
  };
  for (const [path, methods] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(methods)) {
      const body = (op.requestBody as { content?: Record<string, { schema: JsonSchema }>; required?: boolean }) ?? null;
      operations.push({
        method: method.toUpperCase(),
        path,
        parameters: (op.parameters as Operation['parameters']) ?? [],
        body: body?.content?.['application/json']?.schema ?? null,
        bodyRequired: body?.required ?? false,
        statuses: new Set(Object.keys((op.responses as object) ?? {}).map(Number)),
        secured: ((op.security as unknown[]) ?? doc.security ?? []).length > 0,
      });
    }
  if (ONLY_PATH) operations = operations.filter((o) => o.path === ONLY_PATH);
});
afterAll(async () => {
  if (REPORT) {
    const stats = [...seen].map(
      ([op, t]) =>
        `  ${op}: ${[...t]
          .sort(([a], [b]) => a - b)
          .map(([st, n]) => `${st}×${n}`)
          .join(' ')}`,
    );
    const found = [...breaches.values()].map((b) => `- ${b}\n`).join('\n');
    writeFileSync(REPORT, `${found || 'no breaches'}\n\nstatuses seen:\n${stats.join('\n')}\n`);
  }
  await t?.close();
  await s3?.close();
});

interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  /** For the failure report. */
  note: string;
}

const who = fc.constantFrom('alice', 'alice', 'alice', 'alice', 'alice', 'alice', 'bob', 'none', 'forged', 'junk');

/** A path id: an existing one (either user's), one of the right shape that does not exist, or hostile. */
const idArb = (schema: JsonSchema) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...ids.alice, ...ids.bob).map(encodeURIComponent) },
    {
      weight: 2,
      arbitrary: fc.constantFrom('img', 'brd', 'gen').map((p) => encodeURIComponent(newId(p as 'img'))),
    },
    { weight: 3, arbitrary: urlComponent(fc.oneof(nastyString(), valueFor(schema).map(String))) },
  );

function requestFor(op: Operation): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.parameters.filter((p) => p.in === 'path');
  const query = op.parameters.filter((p) => p.in === 'query');
  const headers = op.parameters.filter((p) => p.in === 'header');
  return fc
    .record({
      who,
      path: fc.tuple(...pathParams.map((p) => idArb(p.schema))),
      query: fc.tuple(
        ...query.map((p) =>
          fc.option(
            fc.oneof(
              { weight: 3, arbitrary: validValueFor(p.schema).map((v) => percentEncode(String(v))) },
              { weight: 2, arbitrary: valueFor(p.schema).map((v) => percentEncode(String(v))) },
              { weight: 2, arbitrary: urlComponent(nastyString()) },
            ),
            { freq: 3 },
          ),
        ),
      ),
      // fc.option gives null once in `freq`: here an extra parameter one time in five.
      extraQuery: fc.oneof(
        { weight: 4, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.constantFrom('limit=1&limit=2', 'userId=x', '__proto__[x]=1', 'q[]=a', 'cursor=') },
      ),
      headers: fc.tuple(
        ...headers.map((p) =>
          fc.option(
            fc.oneof(
              validValueFor(p.schema).map(String),
              valueFor(p.schema).map(String),
              fc.constantFrom('', ' ', 'x'.repeat(201), 'ключ', 'a\tb', 'same-key'),
            ),
            { freq: 2 },
          ),
        ),
      ),
      // Half the bodies follow the schema, so requests get past validation into the handlers.
      body: op.body ? fc.option(fc.oneof(validObjectFor(op.body), objectFor(op.body)), { freq: 8 }) : fc.constant(null),
      encoding: op.body ? bodyEncoding : fc.oneof(fc.constant<BodyEncoding>({ kind: 'none' }), bodyEncoding),
    })
    .map((r) => {
      let path = op.path;
      pathParams.forEach((p, i) => (path = path.replace(`{${p.name}}`, r.path[i]!)));
      const qs = query.flatMap((p, i) => (r.query[i] == null ? [] : [`${p.name}=${r.query[i]}`]));
      if (r.extraQuery) qs.push(r.extraQuery);
      const h: Record<string, string> = {};
      if (r.who === 'alice') Object.assign(h, auth(alice));
      if (r.who === 'bob') Object.assign(h, auth(bob));
      if (r.who === 'forged') h.authorization = `Bearer ${forged}`;
      if (r.who === 'junk') h.authorization = 'Bearer \u00ff.\u00fe.x';
      headers.forEach((p, i) => {
        const v = r.headers[i];
        // Node refuses to send some header bytes at all; those never reach a server.
        if (v != null && /^[\t\x20-\x7e\x80-\xff]*$/.test(v)) h[p.name] = v;
      });
      let payload: string | Buffer | undefined;
      const e = r.encoding;
      if (e.kind === 'json' && r.body !== null) {
        h['content-type'] = 'application/json';
        payload = JSON.stringify(r.body);
      } else if (e.kind === 'content-type') {
        if (e.contentType) h['content-type'] = e.contentType;
        payload =
          e.contentType?.includes('utf-16') && r.body
            ? Buffer.from(JSON.stringify(r.body), 'utf16le')
            : JSON.stringify(r.body ?? {});
      } else if (e.kind === 'raw') {
        h['content-type'] = e.contentType;
        payload = Buffer.from(e.bytes);
      }
      const url = qs.length ? `${path}?${qs.join('&')}` : path;
      return {
        method: op.method,
        url,
        headers: h,
        ...(payload === undefined ? {} : { payload }),
        note: `${r.who}; encoding ${e.kind}${e.kind === 'content-type' ? ` (${e.contentType})` : ''}`,
      };
    });
}

const describeRequest = (r: FuzzRequest) =>
  JSON.stringify({
    method: r.method,
    url: r.url.length > 300 ? `${r.url.slice(0, 300)}… (${r.url.length} chars)` : r.url,
    headers: { ...r.headers, ...(r.headers.authorization ? { authorization: '<token>' } : {}) },
    payload:
      typeof r.payload === 'string'
        ? r.payload.length > 500
          ? `${r.payload.slice(0, 500)}… (${r.payload.length} chars)`
          : r.payload
        : r.payload
          ? `<${r.payload.length} bytes: ${r.payload.subarray(0, 64).toString('hex')}>`
          : undefined,
    note: r.note,
  });

/** Sends one request and checks every invariant; throws with the request and response on a breach. */
async function check(op: Operation, req: FuzzRequest): Promise<void> {
  if (!REPORT) return checkOnce(op, req);
  try {
    await checkOnce(op, req);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const kind = `${op.method} ${op.path}: ${msg.split('\n')[0]!.replace(/\d{3}/g, 'NNN').slice(0, 80)} ${msg.match(/response: (\d+)/)?.[1]}`;
    if (!breaches.has(kind)) breaches.set(kind, msg);
  }
}

async function checkOnce(op: Operation, req: FuzzRequest): Promise<void> {
  const before = await snapshot();
  const res = await t.app.inject({
    method: req.method as 'GET',
    url: req.url,
    headers: req.headers,
    ...(req.payload === undefined ? {} : { payload: req.payload }),
  });
  const tally = seen.get(`${op.method} ${op.path}`) ?? new Map<number, number>();
  tally.set(res.statusCode, (tally.get(res.statusCode) ?? 0) + 1);
  seen.set(`${op.method} ${op.path}`, tally);
  const fail = (why: string) =>
    new Error(`${why}\n  request:  ${describeRequest(req)}\n  response: ${res.statusCode} ${res.body.slice(0, 600)}`);
  if (!op.statuses.has(res.statusCode))
    throw fail(`${op.method} ${op.path}: status ${res.statusCode} is not documented (${[...op.statuses].join(', ')})`);
  if (res.statusCode >= 400) {
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      throw fail('error body is not JSON');
    }
    const err = (body as { error?: Record<string, unknown> })?.error;
    const keysOk =
      body !== null &&
      typeof body === 'object' &&
      Object.keys(body).join() === 'error' &&
      err !== null &&
      typeof err === 'object' &&
      Object.keys(err).every((k) => ['code', 'message', 'details'].includes(k));
    if (!keysOk || typeof err.code !== 'string' || typeof err.message !== 'string' || !err.message)
      throw fail('error body is not { error: { code, message, details? } }');
    if (!ERROR_CODES.has(err.code)) throw fail(`unknown error code ${err.code}`);
    if (httpStatusFor(err.code as ErrorCode) !== res.statusCode)
      throw fail(`code ${err.code} is ${httpStatusFor(err.code as ErrorCode)} in the table, sent as ${res.statusCode}`);
    if (err.details !== undefined && (typeof err.details !== 'object' || err.details === null))
      throw fail('error details is not an object');
    const after = await snapshot();
    const changed = Object.keys(after).filter((k) => JSON.stringify(after[k]) !== JSON.stringify(before[k]));
    if (changed.length) throw fail(`a ${res.statusCode} wrote to: ${changed.join(', ')}`);
  } else if (String(res.headers['content-type']).startsWith('application/json')) {
    expect(() => JSON.parse(res.body), describeRequest(req)).not.toThrow();
  }
  if (op.secured && !req.headers.authorization && res.statusCode < 400)
    throw fail('an authenticated route answered without a token');
}

describe('fuzzing every route of the OpenAPI document', () => {
  it('the document lists the API (every /v1 route a client uses)', () => {
    const listed = operations.map((o) => `${o.method} ${o.path}`);
    if (ONLY_PATH) return expect(listed.length).toBeGreaterThan(0);
    for (const route of [
      'GET /v1/me',
      'POST /v1/generations',
      'GET /v1/generations/{id}',
      'POST /v1/generations/{id}/cancel',
      'GET /v1/images',
      'PATCH /v1/images/{id}',
      'DELETE /v1/boards/{id}',
      'POST /v1/billing/checkout',
    ])
      expect(listed).toContain(route);
  });

  it('every operation: documented status, standard error body, nothing written on an error', async () => {
    expect(operations.length).toBeGreaterThan(0);
    for (const op of operations) {
      await fc.assert(
        fc.asyncProperty(requestFor(op), (req) => check(op, req)),
        {
          numRuns: RUNS,
          ...(SEED === undefined ? {} : { seed: SEED }),
          endOnFailure: false,
          interruptAfterTimeLimit: 120_000,
        },
      );
    }
  }, 600_000);

  it('edge cases every operation must survive (fixed examples, not left to chance)', async () => {
    const bodyLimit = t.config.api.bodyLimit;
    for (const op of operations) {
      const id = op.path.includes('{id}');
      const fill = (v: string) => op.path.replace('{id}', v);
      const cases: FuzzRequest[] = [
        { method: op.method, url: fill('x'), headers: {}, note: 'no token' },
        { method: op.method, url: fill('%00'), headers: auth(alice), note: 'NUL id' },
        { method: op.method, url: fill('%ED%A0%80'), headers: auth(alice), note: 'surrogate id' },
        { method: op.method, url: fill('%E0%A4%A'), headers: auth(alice), note: 'bad percent-encoding' },
        { method: op.method, url: fill('a'.repeat(5000)), headers: auth(alice), note: 'long id' },
        {
          method: op.method,
          url: `${fill(ids.alice[2]!)}?q=%00&cursor=%ED%A0%80&limit=101&board=none`,
          headers: auth(alice),
          note: 'hostile query',
        },
        {
          method: op.method,
          url: fill(ids.alice[2]!),
          headers: { ...auth(alice), 'content-type': 'application/json' },
          payload: 'x'.repeat(bodyLimit + 1),
          note: 'body over the limit',
        },
        {
          method: op.method,
          url: fill(ids.bob[2]!),
          headers: { ...auth(alice), 'content-type': 'application/json' },
          payload: JSON.stringify({ prompt: '画'.repeat(2000), negativePrompt: '😀'.repeat(1000), name: '\u0000' }),
          note: 'another user’s id, CJK at the bound',
        },
      ];
      for (const c of id ? cases : cases.filter((x) => !['NUL id', 'surrogate id', 'long id'].includes(x.note)))
        await check(op, c);
    }
  }, 300_000);
});
