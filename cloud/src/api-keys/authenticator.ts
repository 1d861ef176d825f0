/**
 * Authenticates `Authorization: Bearer atl_…` (docs/decisions/0161).
 *
 * A key is checked for shape and checksum, hashed (SHA-256) and looked up through the
 * `atelier_api_key_lookup` function. Live keys are then cached in this process for `ttlMs`, so a
 * busy script costs no database round trip per request — but only while this process LISTENs on
 * `atelier_api_keys`, the channel every revocation notifies on commit (a trigger, so any path that
 * ends a key notifies). A notification drops the key here before the next request is served; if
 * the listening connection drops, the whole cache is emptied and not used again until it is back
 * (a revocation may have been missed meanwhile). A lookup that overlapped an invalidation is not
 * cached, so a stale "live" answer read just before a revoke cannot outlive it.
 *
 * "The next request" is exact, not "a few milliseconds later". Postgres hands a listening session
 * every notification committed before it answers a query that ends outside a transaction block,
 * ahead of that answer. So a request served from the cache is confirmed by the first such answer to
 * a query SENT after the request arrived, on any listening connection — and every connection of
 * the app pool LISTENs too, so under load the requests' own queries (their COMMITs) bring the
 * confirmation for free. When none has come by the time it is needed (`confirm()`: before the
 * handler on requests that change anything, before the response leaves on reads), an empty query
 * on the dedicated LISTEN connection brings it (shared by the requests waiting then; a request
 * joins the next round trip to start, never one already in flight, which might predate a revoke).
 */
import { AppError, type ApiKeyScope } from '@atelier/common';
import pg from 'pg';
import type { Pool } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import { apiKeyHashBase64, isWellFormedApiKey } from './key-format.ts';
import { lookupKey, touchKey } from './repository.ts';

export const API_KEYS_CHANNEL = 'atelier_api_keys';
const DONE: Promise<void> = Promise.resolve();

export interface KeyPrincipal {
  keyId: string;
  userId: string;
  scopes: readonly ApiKeyScope[];
}

export interface ApiKeyAuthenticatorOptions {
  /** The app pool (role atelier_app): lookups and last_used_at updates. */
  pool: Pool;
  /** Where to LISTEN for revocations; null: no cache, every request looks its key up. */
  listenUrl: string | null;
  /** Unit: ms a live key is served from the cache before it is looked up again. Default 60 s. */
  ttlMs?: number;
  /** Keys kept in the cache (LRU). Default 10 000. */
  maxEntries?: number;
  /** Unit: seconds between two last_used_at writes of one key by this process. Default 60. */
  touchEverySeconds?: number;
  now?: () => number;
  log?: (msg: string, err?: unknown) => void;
}

interface Entry {
  principal: KeyPrincipal;
  until: number;
}

export class ApiKeyAuthenticator {
  readonly #pool: Pool;
  readonly #listenUrl: string | null;
  readonly #ttl: number;
  readonly #max: number;
  readonly #touchMs: number;
  readonly #now: () => number;
  readonly #log: (msg: string, err?: unknown) => void;
  /** hash (base64) → entry; Map order is insertion order, so the first key is the least recently used. */
  readonly #cache = new Map<string, Entry>();
  readonly #hashById = new Map<string, string>();
  /** key id → when this process last wrote its last_used_at. */
  readonly #touched = new Map<string, number>();
  #client: pg.Client | null = null;
  #listening = false;
  #stopped = false;
  #retry: NodeJS.Timeout | null = null;
  /** Bumped by every invalidation; a lookup that saw it change is not cached. */
  #epoch = 0;
  /** The round trip on the LISTEN connection in flight, and the one queued behind it. */
  #syncing: Promise<void> | null = null;
  #nextSync: Promise<void> | null = null;
  /**
   * One clock for request arrivals and for answers on listening pool connections: an answer
   * confirms the requests that arrived before its query was sent (#confirmedThrough).
   */
  #seq = 0;
  /** Every request that arrived before this mark has seen all revocations committed before it. */
  #confirmedThrough = 0;
  /** Cached-key requests not yet confirmed, in arrival order (their marks increase). */
  readonly #waiting: { mark: number; resolve: () => void }[] = [];
  #watchedPool = false;
  /** Per pool connection: stamps "handed out now" (its next query is sent after this). */
  readonly #acquired = new WeakMap<pg.PoolClient, () => void>();
  #trusted = 0;

  constructor(opts: ApiKeyAuthenticatorOptions) {
    this.#pool = opts.pool;
    this.#listenUrl = opts.listenUrl;
    this.#ttl = opts.ttlMs ?? 60_000;
    this.#max = opts.maxEntries ?? 10_000;
    this.#touchMs = (opts.touchEverySeconds ?? 60) * 1000;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? (() => {});
  }

  async start(): Promise<void> {
    this.#stopped = false;
    if (!this.#listenUrl) return;
    this.#watchPool();
    // A database that is down at boot must not stop the API from starting (it answers 503 until
    // the database is back): without the listener the cache stays off and every key is looked up.
    await this.#connect().catch((err: unknown) => {
      this.#log('api key revocation listener could not connect; retrying', err);
      this.#scheduleReconnect();
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#invalidateAll();
    const c = this.#client;
    this.#client = null;
    if (c) await c.end().catch(() => undefined);
  }

  /** Whether revocations are being heard (and so lookups cached). */
  get caching(): boolean {
    return this.#listening;
  }

  /** Pool connections whose answers confirm cached keys (see #watchPool). */
  get confirmingConnections(): number {
    return this.#trusted;
  }

  get cachedKeys(): number {
    return this.#cache.size;
  }

  /**
   * The key's owner and scopes, known to be current. Throws API_KEY_INVALID (malformed, wrong
   * checksum, unknown), API_KEY_REVOKED, or ACCOUNT_DELETED (the account is being deleted).
   */
  async authenticate(key: string): Promise<KeyPrincipal> {
    const r = await this.begin(key);
    await r.confirm();
    return r.principal;
  }

  /**
   * Authenticates at once and confirms later, so the confirmation can come from the request's own
   * queries (or overlap them): `confirm()` rejects (API_KEY_REVOKED, …) when a revocation
   * committed before this call had not yet reached this process. The caller must await it before
   * anything the key asked for takes effect or is sent back. The same errors as `authenticate`.
   */
  async begin(key: string): Promise<{ principal: KeyPrincipal; confirm: () => Promise<void> }> {
    const h = apiKeyHashBase64(key);
    // A cached hash is a key that was well formed when it was looked up: only others are checked.
    const hit = this.#cache.get(h);
    if (!hit && !isWellFormedApiKey(key)) throw new AppError('API_KEY_INVALID', 'Malformed API key');
    if (hit) {
      this.#cache.delete(h);
      if (this.#listening && this.#now() < hit.until) {
        this.#cache.set(h, hit);
        this.#touch(hit.principal);
        // Marked now, at the request's arrival: what confirms it must have been asked after this.
        const mark = ++this.#seq;
        let confirmed: Promise<void> | null = null;
        const confirm = () => {
          if (confirmed) return confirmed;
          // Already confirmed (usually by the request's own COMMIT) and nothing dropped the key.
          if (mark < this.#confirmedThrough && this.#hashById.get(hit.principal.keyId) === h) return (confirmed = DONE);
          const heard =
            mark < this.#confirmedThrough
              ? DONE
              : // Whichever comes first: a pool connection's answer or the dedicated connection's.
                Promise.race([new Promise<void>((resolve) => this.#waiting.push({ mark, resolve })), this.#sync()]);
          return (confirmed = heard
            .catch(() => undefined) // a failed round trip means a lost connection: the cache is empty then
            .then(() => this.#recheck(h, hit.principal)));
        };
        return { principal: hit.principal, confirm };
      }
      this.#hashById.delete(hit.principal.keyId);
    }
    const principal = await this.#lookup(h);
    return { principal, confirm: () => DONE };
  }

  /** After the round trip: still cached means no invalidation reached it; otherwise ask the database. */
  async #recheck(h: string, p: KeyPrincipal): Promise<void> {
    if (this.#hashById.get(p.keyId) === h) return;
    await this.#lookup(h);
  }

  async #lookup(h: string): Promise<KeyPrincipal> {
    const epoch = this.#epoch;
    const found = await lookupKey(this.#pool, Buffer.from(h, 'base64'));
    if (!found) throw new AppError('API_KEY_INVALID', 'Unknown API key');
    if (found.revoked) throw new AppError('API_KEY_REVOKED', 'API key revoked');
    if (found.deleting) throw new AppError('ACCOUNT_DELETED', 'The account of this API key is being deleted');
    const principal: KeyPrincipal = { keyId: found.id, userId: found.userId, scopes: Object.freeze([...found.scopes]) };
    if (this.#listening && epoch === this.#epoch) {
      if (this.#cache.size >= this.#max) this.#evict(this.#cache.keys().next().value!);
      this.#cache.set(h, { principal, until: this.#now() + this.#ttl });
      this.#hashById.set(principal.keyId, h);
    }
    this.#touch(principal);
    return principal;
  }

  /**
   * Resolves once every notification committed before this call has been applied: a round trip
   * on the LISTEN connection that starts after the call (shared by the calls that wait for it).
   * If it fails the connection is lost, which empties the cache anyway.
   */
  #sync(): Promise<void> {
    // A queued round trip has not started yet, so it will also see everything committed by now.
    if (this.#nextSync) return this.#nextSync;
    if (!this.#syncing) return this.#beginSync();
    this.#nextSync = this.#syncing
      .catch(() => undefined)
      .then(() => {
        this.#nextSync = null;
        return this.#beginSync();
      });
    return this.#nextSync;
  }

  #beginSync(): Promise<void> {
    const c = this.#client;
    // Requests that arrived before this round trip is sent are confirmed when it is back.
    const mark = ++this.#seq;
    const p: Promise<void> = (c ? c.query('') : Promise.reject(new Error('not listening'))).then(() =>
      this.#confirmThrough(mark),
    );
    const done = p.finally(() => {
      if (this.#syncing === done) this.#syncing = null;
    });
    this.#syncing = done;
    return done;
  }

  /**
   * Every connection of the app pool LISTENs as well (from its first use on), and each answer it
   * receives outside a transaction block confirms the requests that arrived before its query was
   * sent. Without pipelining a connection sends a query only once the previous one is answered and
   * (for a request's own queries) after the pool handed it out, so it was sent after both of those
   * moments, stamped here; the notification handler runs before the answer's, in the order
   * Postgres sent them.
   */
  #watchPool(): void {
    if (this.#watchedPool) return;
    this.#watchedPool = true;
    // pg-pool awaits onConnect before it hands a new connection out, so LISTEN runs before (not
    // queued beside) the first query of whoever asked for it.
    const before = this.#pool.options.onConnect;
    this.#pool.options.onConnect = async (client: pg.ClientBase) => {
      await before?.(client);
      await this.#listenOn(client as pg.PoolClient);
    };
    this.#pool.on('acquire', (client: pg.PoolClient) => this.#acquired.get(client)?.());
  }

  async #listenOn(client: pg.PoolClient): Promise<void> {
    // 'listen': LISTEN sent; 'trust': a round trip on the dedicated connection sent after this
    // connection's LISTEN took effect is back, so revocations committed before then (which
    // this connection never hears) have been applied; 'trusted': its answers confirm requests.
    let state: 'listen' | 'ready' | 'trust' | 'trusted' = 'listen';
    /** Stamped at the last answer and when the pool last handed the connection out: its next query is sent after both. */
    let previous = 0;
    this.#acquired.set(client, () => void (previous = ++this.#seq));
    client.on('notification', (msg) => {
      if (msg.channel === API_KEYS_CHANNEL && msg.payload) this.invalidate(msg.payload);
    });
    const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
    connection.on('readyForQuery', (msg: { status?: string }) => {
      const stamp = ++this.#seq;
      const pipelined = (client as unknown as { pipeline?: boolean }).pipeline === true;
      if (state === 'trusted' && !pipelined && msg.status === 'I' && previous > 0) this.#confirmThrough(previous);
      previous = stamp;
      if (state === 'ready' && this.#listening) {
        state = 'trust';
        this.#sync().then(
          () => {
            state = 'trusted';
            this.#trusted++;
          },
          () => void (state = 'ready'), // the dedicated connection is down: try again later
        );
      }
    });
    client.once('end', () => {
      if (state === 'trusted') this.#trusted--;
      state = 'listen';
    });
    try {
      await client.query(`LISTEN ${API_KEYS_CHANNEL}`);
      state = 'ready';
    } catch (err) {
      // The connection still serves queries; it just never confirms a cached key.
      this.#log('api key listener on a pool connection failed', err);
    }
  }

  #confirmThrough(mark: number): void {
    if (mark <= this.#confirmedThrough) return;
    this.#confirmedThrough = mark;
    let n = 0;
    while (n < this.#waiting.length && this.#waiting[n]!.mark < mark) this.#waiting[n++]!.resolve();
    if (n) this.#waiting.splice(0, n);
  }

  /** Drops one key from this process's cache (also what a notification does). */
  invalidate(keyId: string): void {
    this.#epoch++;
    const h = this.#hashById.get(keyId);
    if (h) this.#evict(h);
  }

  #evict(h: string): void {
    const e = this.#cache.get(h);
    this.#cache.delete(h);
    if (e) this.#hashById.delete(e.principal.keyId);
  }

  #invalidateAll(): void {
    this.#epoch++;
    // Nothing cached survives, so whoever waits looks its key up again: let them go on.
    for (const w of this.#waiting.splice(0)) w.resolve();
    this.#cache.clear();
    this.#hashById.clear();
  }

  /** last_used_at, at most once a minute per key and process, off the request's path. */
  #touch(p: KeyPrincipal): void {
    const t = this.#now();
    const last = this.#touched.get(p.keyId);
    if (last !== undefined && t - last < this.#touchMs) return;
    if (this.#touched.size >= this.#max) this.#touched.delete(this.#touched.keys().next().value!);
    this.#touched.delete(p.keyId);
    this.#touched.set(p.keyId, t);
    withUserTx(this.#pool, p.userId, (tx) => touchKey(tx, p.keyId, this.#touchMs / 1000)).catch((err: unknown) =>
      this.#log('api key last_used_at update failed', err),
    );
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#listenUrl!, application_name: 'atelier-api-keys' });
    const lost = (err?: unknown) => {
      if (this.#client !== client) return;
      if (err) this.#log('api key revocation listener lost', err);
      this.#client = null;
      this.#listening = false;
      this.#invalidateAll();
      this.#scheduleReconnect();
    };
    client.on('notification', (msg) => {
      if (msg.channel === API_KEYS_CHANNEL && msg.payload) this.invalidate(msg.payload);
    });
    client.on('error', (err) => lost(err));
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${API_KEYS_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#listening = true;
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#connect().catch((err: unknown) => {
        this.#log('api key revocation listener reconnect failed', err);
        this.#scheduleReconnect();
      });
    }, 1000);
    this.#retry.unref();
  }
}
