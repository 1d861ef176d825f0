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
 * "The next request" is exact, not "a few milliseconds later": a request served from the cache
 * also starts a round trip on the LISTEN connection when it arrives (an empty query: nothing to
 * parse or plan). Postgres hands a listening session every notification committed before it sends
 * that query's ReadyForQuery, so once the round trip is back every revocation committed before
 * the request arrived has been applied, and the key is checked again. Concurrent requests share one round trip (a request
 * joins the next one to start, never one already in flight, which might predate the revoke). The
 * `authenticate` hook awaits it before the handler on requests that change anything, and before
 * the response leaves on reads (GET/HEAD), so there it overlaps the handler's own work.
 */
import { AppError, type ApiKeyScope } from '@atelier/common';
import pg from 'pg';
import type { Pool } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import { hashApiKey, isWellFormedApiKey } from './key-format.ts';
import { lookupKey, touchKey } from './repository.ts';

export const API_KEYS_CHANNEL = 'atelier_api_keys';

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

  get cachedKeys(): number {
    return this.#cache.size;
  }

  /**
   * The key's owner and scopes, known to be current. Throws API_KEY_INVALID (malformed, wrong
   * checksum, unknown), API_KEY_REVOKED, or ACCOUNT_DELETED (the account is being deleted).
   */
  async authenticate(key: string): Promise<KeyPrincipal> {
    const r = await this.begin(key);
    await r.confirmed;
    return r.principal;
  }

  /**
   * Authenticates at once and confirms in the background, so the confirmation's round trip can
   * overlap the request's own work: `confirmed` rejects (API_KEY_REVOKED, …) when a revocation
   * committed before this call had not yet reached this process. The caller must await it before
   * anything the key asked for takes effect or is sent back. The same errors as `authenticate`.
   */
  async begin(key: string): Promise<{ principal: KeyPrincipal; confirmed: Promise<void> }> {
    if (!isWellFormedApiKey(key)) throw new AppError('API_KEY_INVALID', 'Malformed API key');
    const hash = hashApiKey(key);
    const h = hash.toString('base64');
    const hit = this.#cache.get(h);
    if (hit) {
      this.#cache.delete(h);
      if (this.#listening && this.#now() < hit.until) {
        this.#cache.set(h, hit);
        this.#touch(hit.principal);
        // Started now, at the request's arrival: it sees every revocation committed before it.
        const confirmed = this.#sync()
          .catch(() => undefined)
          .then(() => this.#recheck(h, hash, hit.principal));
        confirmed.catch(() => undefined); // the caller awaits it; never an unhandled rejection
        return { principal: hit.principal, confirmed };
      }
      this.#hashById.delete(hit.principal.keyId);
    }
    return { principal: await this.#lookup(h, hash), confirmed: Promise.resolve() };
  }

  /** After the round trip: still cached means no invalidation reached it; otherwise ask the database. */
  async #recheck(h: string, hash: Buffer, p: KeyPrincipal): Promise<void> {
    if (this.#hashById.get(p.keyId) === h) return;
    await this.#lookup(h, hash);
  }

  async #lookup(h: string, hash: Buffer): Promise<KeyPrincipal> {
    const epoch = this.#epoch;
    const found = await lookupKey(this.#pool, hash);
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
    const p: Promise<void> = (c ? c.query('') : Promise.reject(new Error('not listening'))).then(() => undefined);
    const done = p.finally(() => {
      if (this.#syncing === done) this.#syncing = null;
    });
    this.#syncing = done;
    return done;
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
