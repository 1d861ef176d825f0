/**
 * The desktop's gallery sync engine (issue 13), plain Node. One pass (`syncOnce`):
 *
 * 1. Push: local images not yet in the cloud are uploaded with bounded concurrency (reserve →
 *    PUT image and thumbnail to the presigned URLs → complete), each step retried with backoff.
 *    The server keys reservations by sha256, so a pass that dies anywhere (even SIGKILL mid-PUT)
 *    resumes onto the same image id: one object, one record. Then queued local edits (star,
 *    board, delete, restore, board create/rename/delete) are sent with the field versions this
 *    device last saw; the server resolves concurrent edits per field.
 * 2. Pull: the change feed from this account's cursor. A new cloud image becomes a library row
 *    with its thumbnail at once (the gallery fills page by page); its full PNG is marked not
 *    downloaded and fetched by the background downloader (below), or at once when something
 *    needs it (`fetchFull`: the Viewer, a starting image). Stars, boards, tombstones and restores
 *    are applied, except on fields with a local edit still waiting (sent next pass, wins then).
 * 3. Full images: the downloader walks the rows still waiting (SQLite, so a restart resumes),
 *    newest first, with bounded concurrency and retries, never a tombstoned row; each PNG is
 *    checked against the sha256 the cloud recorded. URLs come from the feed while fresh, else
 *    from `GET /v1/images/:id` (presigned URLs live 15 minutes; decision 0148).
 *
 * Nothing runs while signed out, and every row it writes remembers the account, so another
 * account never edits (or is sent) the first one's cloud ids.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import {
  AppError,
  isErrorCode,
  MAX_UPLOAD_BATCH,
  type CompleteUploadItem,
  type CreateUploadBody,
  type Image,
  type ImageMetadata,
  type PresignedPut,
  type StorageUsage,
  type SyncChange,
  type SyncChangesPage,
  type SyncEdit,
  type SyncEditResult,
  type UploadBatchItem,
  type UploadItemError,
} from '@atelier/common';
import type { Clock } from '../clock.ts';
import { statementCache, type Db } from '../db.ts';
import type { Library } from '../library.ts';

/** What the engine needs from the cloud (cloud-port.ts builds it on the cloud client). */
export interface SyncCloudPort {
  /** The signed-in account, or null: nothing is sent or pulled without one. */
  account(): string | null;
  /** POST /v1/uploads/batch: `results[i]` answers `bodies[i]` (at most MAX_UPLOAD_BATCH). */
  createUploads(bodies: CreateUploadBody[]): Promise<UploadBatchItem[]>;
  /** POST /v1/uploads/complete: `results[i]` answers `ids[i]` (at most MAX_UPLOAD_BATCH). */
  completeUploads(ids: string[]): Promise<CompleteUploadItem[]>;
  changes(cursor: string, limit: number): Promise<SyncChangesPage>;
  edits(edits: SyncEdit[]): Promise<SyncEditResult[]>;
  /** PUT to a presigned URL with its headers; throws AppError (retryable for 5xx/network). */
  put(put: PresignedPut, body: Uint8Array): Promise<void>;
  /**
   * PUT a file that must still be exactly `expect` (the size and SHA-256 reserved): checked
   * before a byte moves, BAD_REQUEST when it changed on disk since it was saved.
   */
  putFile(put: PresignedPut, file: string, expect: { size: number; sha256: string }): Promise<void>;
  download(url: string): Promise<Uint8Array>;
  /**
   * GET a presigned URL into `file` (created new, fsynced unless `durable` is false; removed again on failure) with the
   * SHA-256 of what was written, hashed as the bytes arrived.
   */
  downloadFile(
    url: string,
    file: string,
    durable?: boolean,
    onProgress?: (receivedBytes: number, totalBytes: number | null) => void,
  ): Promise<{ size: number; sha256: string }>;
  /** One image with fresh presigned URLs (GET /v1/images/:id); NOT_FOUND once it is deleted. */
  image(id: string): Promise<Image>;
  /** The account's synced storage and the plan's limit (GET /v1/me), null when the cloud does not say. */
  storage(): Promise<StorageUsage | null>;
}

export type SyncState = 'idle' | 'syncing' | 'paused' | 'offline' | 'error' | 'signed_out';

export interface SyncStatus {
  state: SyncState;
  /** Uploads and downloads finished / planned in the current pass. */
  done: number;
  total: number;
  lastSyncAt: string | null;
  error: string | null;
  errorCode: string | null;
  /** As of the last pass. */
  storage: StorageUsage | null;
  /** Waiting images that do not fit in the storage left, found before any of their bytes moved. */
  overLimit: { images: number; bytes: number } | null;
  /**
   * Full images of rows that came with their thumbnail only: fetched since the queue was last
   * empty (done), still waiting, and done + waiting (total).
   */
  downloads: { done: number; total: number; waiting: number };
}

export interface SyncEngineOptions {
  db: Db;
  library: Library;
  cloud: SyncCloudPort;
  clock: Clock;
  /** Unit: simultaneous downloads per feed page (default 8). */
  concurrency?: number;
  /** Unit: objects (images, thumbnails) PUT at the same time (default 10, as aws s3 sync). */
  uploadConcurrency?: number;
  /** Unit: attempts per network step, including the first. */
  attempts?: number;
  /** Unit: ms, first retry delay (doubles, with jitter, up to 30 s). */
  backoffMs?: number;
  onStatus?: (s: SyncStatus) => void;
  /** A full image arrived (its row is now `downloaded`): the gallery and an open Viewer refresh. */
  onDownloaded?: (localId: string) => void;
  /**
   * Bytes of a full image that someone is waiting for (`fetchFull`: the Viewer) as they arrive,
   * at most about ten times a second; background downloads do not report.
   */
  onDownloadProgress?: (localId: string, receivedBytes: number, totalBytes: number | null) => void;
  log?: (msg: string, err?: unknown) => void;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MB`;
/** Unit: waits on the API's rate limit (429 with Retry-After) per network step before giving up. */
const MAX_RATE_LIMIT_WAITS = 20;
/** Unit: changes per feed page. */
const PAGE_SIZE = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Unit: images in the first reservation batch of a level: small, so the first PUTs start at once. */
const FIRST_BATCH = 16;

interface PushControl {
  /** A full storage (or the like) ends the pass's uploads. */
  stop: boolean;
  /** The first failure, which the pass reports. */
  failed: unknown;
}

/** Wakes every waiter, not only the last one to register. */
const chain = (prev: (() => void) | null, next: () => void) => (prev ? () => (prev(), next()) : next);

/** An item's refusal in a batch answer, as the error the single-item route would have thrown. */
function itemError(e: UploadItemError | undefined): AppError {
  if (!e) return new AppError('INTERNAL', 'the cloud answered a batch without this item');
  return new AppError(isErrorCode(e.code) ? e.code : 'INTERNAL', e.message, {
    ...(e.details ? { details: e.details } : {}),
  });
}

/** Unit: feed URLs kept for the downloader; beyond, it asks the API per image (bounded memory). */
const MAX_KEPT_URLS = 10_000;
/** Unit: ms a presigned URL must still be valid to be used rather than asked for again. */
const URL_MARGIN_MS = 60_000;

/** When a SigV4 presigned URL stops working (X-Amz-Date + X-Amz-Expires); 0 when it does not say. */
export function presignedExpiry(url: string): number {
  try {
    const q = new URL(url).searchParams;
    const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(q.get('X-Amz-Date') ?? '');
    const ttl = Number(q.get('X-Amz-Expires'));
    if (!d || !Number.isFinite(ttl)) return 0;
    return Date.UTC(+d[1]!, +d[2]! - 1, +d[3]!, +d[4]!, +d[5]!, +d[6]!) + ttl * 1000;
  } catch {
    return 0;
  }
}

function retryable(e: unknown): boolean {
  if (AppError.is(e)) return e.retryable || e.code === 'OFFLINE';
  return true; // network errors from fetch
}

interface LocalImageRow {
  id: string;
  file_name: string;
  sha256: string;
  size: number;
  width: number;
  height: number;
  metadata: string | null;
  starred: number;
  board_id: string | null;
}

/**
 * The starting image and mask an image was made from (issue 15) are named by this library's ids
 * locally and by cloud ids in the cloud, so that Reuse settings on another device finds the same
 * picture there. `map` gives the other side's id, or null to keep the name as it is (a picture not
 * synced yet, a mask — masks stay on the device that painted them — or a CLI file name).
 */
export function withInputRefs(metadata: ImageMetadata, map: (id: string) => string | null): ImageMetadata {
  const swap = (v: string | undefined) => (v === undefined ? v : (map(v) ?? v));
  if (metadata.init_image === undefined && metadata.init_mask === undefined) return metadata;
  const out: ImageMetadata = { ...metadata };
  const image = swap(metadata.init_image);
  const mask = swap(metadata.init_mask);
  if (image !== undefined) out.init_image = image;
  if (mask !== undefined) out.init_mask = mask;
  return out;
}

/** What a local image says it is, for images without generation metadata (imports). */
function fallbackMetadata(row: LocalImageRow): ImageMetadata {
  return {
    positive_prompt: '',
    negative_prompt: '',
    seed: 0,
    steps: 1,
    cfg_scale: 0,
    scheduler: 'unknown',
    width: row.width,
    height: row.height,
    model: { name: 'unknown' },
    generation_mode: 'imported',
    app_version: '0',
  };
}

export function createSyncEngine(opts: SyncEngineOptions) {
  const { db, library, cloud, clock } = opts;
  const stmt = statementCache(db);
  const log = opts.log ?? (() => undefined);
  // 8 downloads in flight keep a link busy through the feed round trips (measured with
  // bench/sync.ts: 4 left it idle between them; aws s3 sync runs 10, rclone 4 plus checkers).
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  // Ten objects in flight: the class aws s3 sync runs in (max_concurrent_requests 10); the
  // reservations and completions around them are batched, so these slots only move bytes.
  const uploadConcurrency = Math.max(1, opts.uploadConcurrency ?? 10);
  const attempts = Math.max(1, opts.attempts ?? 5);
  const backoffMs = opts.backoffMs ?? 500;
  /** Local ids whose upload is in flight (the gallery's "uploading" badge). */
  const uploading = new Set<string>();
  /** Local ids that did not fit in the storage left at the last pass: they stay here (badge "local"). */
  const overLimitIds = new Set<string>();

  let paused = false;
  let running: Promise<void> | null = null;
  let again = false;
  let status: SyncStatus = {
    state: 'idle',
    done: 0,
    total: 0,
    lastSyncAt:
      (stmt("SELECT value FROM sync_state WHERE key = 'last_sync_at'").get() as { value: string } | undefined)?.value ??
      null,
    error: null,
    errorCode: null,
    storage: null,
    overLimit: null,
    downloads: { done: 0, total: 0, waiting: 0 },
  };
  const setStatus = (patch: Partial<SyncStatus>) => {
    status = { ...status, ...patch };
    opts.onStatus?.(status);
  };

  async function withRetry<T>(what: string, fn: () => Promise<T>, tries = attempts): Promise<T> {
    let waits = 0;
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (e) {
        // The API's rate limit says how long to wait: wait that (bounded), not a failed attempt.
        const after = AppError.is(e, 'RATE_LIMITED') ? Number(e.details?.retryAfterSeconds ?? 1) : null;
        if (after !== null && waits < MAX_RATE_LIMIT_WAITS && !paused) {
          waits++;
          i--;
          log(`sync: ${what} rate-limited, waiting ${after} s`);
          await sleep(Math.min(60, Math.max(0.2, after)) * 1000 * (1 + Math.random() / 4));
          continue;
        }
        if (i + 1 >= tries || !retryable(e)) throw e;
        const delay = Math.min(30_000, backoffMs * 2 ** i) * (0.5 + Math.random() / 2);
        log(`sync: ${what} failed, retrying in ${Math.round(delay)} ms`, e);
        await sleep(delay);
      }
    }
  }

  // ── local state ────────────────────────────────────────────────────────────────────────────
  const getState = (key: string) =>
    (stmt('SELECT value FROM sync_state WHERE key = ?').get(key) as { value: string } | undefined)?.value ?? null;
  const setState = (key: string, value: string) =>
    stmt(
      'INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ).run(key, value);
  const version = (cloudId: string, field: string) =>
    (
      stmt('SELECT version FROM sync_versions WHERE cloud_id = ? AND field = ?').get(cloudId, field) as
        { version: number } | undefined
    )?.version ?? 0;
  const setVersion = (cloudId: string, field: string, v: number) =>
    stmt(
      'INSERT INTO sync_versions (cloud_id, field, version) VALUES (?, ?, ?) ON CONFLICT (cloud_id, field) DO UPDATE SET version = max(version, excluded.version)',
    ).run(cloudId, field, v);
  const iso = () => clock.now().toISOString();

  /** Records a local edit to send on the next pass (called by the library's IPC handlers). */
  function recordEdit(target: 'image' | 'board', localId: string, field: string, value: unknown): void {
    // Only the latest value of a field matters: older queued values of it are dropped.
    db.transaction(() => {
      stmt('DELETE FROM sync_outbox WHERE target = ? AND local_id = ? AND field = ?').run(target, localId, field);
      const img =
        target === 'image'
          ? (stmt('SELECT cloud_id, cloud_account FROM images WHERE id = ?').get(localId) as
              { cloud_id: string | null; cloud_account: string | null } | undefined)
          : undefined;
      stmt(
        'INSERT INTO sync_outbox (target, local_id, cloud_id, cloud_account, field, value, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(
        target,
        localId,
        target === 'image' ? (img?.cloud_id ?? null) : localId,
        img?.cloud_account ?? null,
        field,
        JSON.stringify(value ?? null),
        iso(),
      );
    })();
  }

  const pendingUploads = (account: string) =>
    stmt(
      `SELECT id, file_name, sha256, size, width, height, metadata, starred, board_id FROM images
          WHERE cloud_id IS NULL AND deleted_at IS NULL AND role = 'image' AND (cloud_account IS NULL OR cloud_account = ?)
          ORDER BY id`,
    ).all(account) as LocalImageRow[];

  // ── push ─────────────────────────────────────────────────────────────────────────────────────
  /** An image on its way up: reserved in a batch, its two objects PUT, then completed in a group. */
  interface Outgoing {
    row: LocalImageRow;
    body: CreateUploadBody;
    thumb: Uint8Array;
    /** Unit: objects (image, thumbnail) not yet in the bucket. */
    left: number;
    failed: boolean;
  }

  /** What a reservation declares: the library's sha256 and size of the PNG, and the thumbnail's. */
  function prepare(row: LocalImageRow): Outgoing {
    const thumb = library.thumbnail(row.id) ?? fallbackThumbnail(row);
    let metadata: ImageMetadata = fallbackMetadata(row);
    if (row.metadata) metadata = JSON.parse(row.metadata) as ImageMetadata;
    metadata = withInputRefs(metadata, (localId) => {
      const r = stmt('SELECT cloud_id FROM images WHERE id = ?').get(localId) as
        { cloud_id: string | null } | undefined;
      return r?.cloud_id ?? null;
    });
    const body: CreateUploadBody = {
      sha256: row.sha256,
      size: row.size,
      thumbSha256: createHash('sha256').update(thumb).digest('hex'),
      thumbSize: thumb.byteLength,
      contentType: 'image/png',
      thumbContentType: 'image/png',
      width: row.width,
      height: row.height,
      metadata,
    };
    return { row, body, thumb, left: 2, failed: false };
  }

  /** A PNG the decoder does not handle (palette, interlaced): the image itself, when small. */
  function fallbackThumbnail(row: LocalImageRow): Uint8Array {
    const png = readFileSync(library.pathOf(row.id));
    if (png.byteLength > 2 * 1024 * 1024)
      throw new AppError('BAD_REQUEST', `image ${row.id} cannot be made into a thumbnail`);
    return png;
  }

  /** The cloud id is written only now (after complete, or an `exists` answer): the resume point. */
  function uploaded(account: string, row: LocalImageRow, cloudId: string): void {
    db.transaction(() => {
      stmt('UPDATE images SET cloud_id = ?, cloud_account = ? WHERE id = ? AND cloud_id IS NULL').run(
        cloudId,
        account,
        row.id,
      );
      // What the image carries locally travels as edits (the upload records bytes and metadata).
      if (row.starred) recordEdit('image', row.id, 'starred', true);
      if (row.board_id) recordEdit('image', row.id, 'boardId', row.board_id);
    })();
  }

  /**
   * Splits the waiting images into those that fit in the storage left and those that do not,
   * BEFORE any byte moves (the cloud would refuse them with 413 anyway; this way the UI can say
   * so and offer Upgrade while the rest still sync).
   */
  function fitting(rows: LocalImageRow[], storage: StorageUsage | null) {
    let room = storage ? storage.limit - storage.used : Number.POSITIVE_INFINITY;
    const fits: LocalImageRow[] = [];
    let over = 0;
    let overBytes = 0;
    overLimitIds.clear();
    for (const r of rows) {
      if (r.size <= room) {
        fits.push(r);
        room -= r.size;
      } else {
        over++;
        overBytes += r.size;
        overLimitIds.add(r.id);
      }
    }
    return { fits, overLimit: over ? { images: over, bytes: overBytes } : null };
  }

  /**
   * Uploads one level of images (none of them waits for another) as a pipeline of three stages,
   * so the PUTs never wait on a batch boundary (decision 0146):
   *   reserve:  batches of up to 100 (the first small, to start the PUTs at once); the next batch
   *             is reserved while the current one's PUTs run;
   *   transfer: `uploadConcurrency` objects in flight (image and thumbnail are separate transfers,
   *             as aws s3 sync and rclone count files);
   *   complete: the images whose two PUTs are done, in groups, one request in flight; a group is
   *             whatever finished while the previous request ran.
   * Every stage stops at pause, account switch or a full storage; what was PUT but not completed
   * is completed on the next pass (same sha256 → same reservation, same keys).
   */
  async function pushLevel(account: string, rows: LocalImageRow[], ctl: PushControl): Promise<void> {
    const halted = () => ctl.stop || paused || cloud.account() !== account;
    const transfers: { o: Outgoing; what: 'image' | 'thumb'; put: PresignedPut }[] = [];
    const toComplete: Outgoing[] = [];
    let producing = true;
    let completing: Promise<void> | null = null;
    let wake: (() => void) | null = null;
    const poke = () => {
      wake?.();
      wake = null;
    };
    const finish = (o: Outgoing, e?: unknown) => {
      uploading.delete(o.row.id);
      if (e !== undefined) {
        o.failed = true;
        ctl.failed ??= e;
        if (AppError.is(e, 'QUOTA_STORAGE_EXCEEDED')) ctl.stop = true;
        log(`sync: upload of ${o.row.id} failed`, e);
      }
      setStatus({ done: status.done + 1 });
    };

    const completeSome = async (): Promise<void> => {
      while (toComplete.length > 0 && cloud.account() === account) {
        const group = toComplete.splice(0, MAX_UPLOAD_BATCH);
        try {
          const results = await withRetry('complete uploads', () =>
            cloud.completeUploads(group.map((o) => idOf.get(o)!)),
          );
          group.forEach((o, i) => {
            const r = results[i];
            if (r?.status === 'completed') {
              uploaded(account, o.row, r.image.id);
              finish(o);
            } else finish(o, itemError(r?.error));
          });
        } catch (e) {
          // The cloud cannot be reached (or keeps refusing): the next pass completes these.
          for (const o of group) finish(o, e);
          ctl.stop = true;
        }
      }
    };
    const kickComplete = () => {
      completing ??= completeSome().finally(() => {
        completing = null;
        // Finished while the request ran: the next group.
        if (toComplete.length > 0 && cloud.account() === account) kickComplete();
        poke();
      });
    };

    const idOf = new Map<Outgoing, string>();
    const transferWorker = async () => {
      for (;;) {
        const t = transfers.shift();
        if (!t) {
          if (!producing) return;
          await new Promise<void>((r) => (wake = chain(wake, r)));
          continue;
        }
        if (t.o.failed) continue;
        if (halted()) {
          // Left for the next pass, which gets the same reservation back.
          t.o.failed = true;
          uploading.delete(t.o.row.id);
          continue;
        }
        try {
          // The PNG goes from disk as it is now, checked against what was reserved: S3 would refuse
          // other bytes (the checksum is signed), and a file changed behind the library's back must
          // not go up under another image's hash. Read by the transfer, so only images in flight
          // are in memory, and not in this thread's (decision 0162).
          const { o } = t;
          await (t.what === 'image'
            ? withRetry('upload image', () =>
                cloud.putFile(t.put, library.pathOf(o.row.id), { size: o.body.size, sha256: o.body.sha256 }),
              )
            : withRetry('upload thumbnail', () => cloud.put(t.put, o.thumb)));
          if (--t.o.left === 0 && !t.o.failed) {
            toComplete.push(t.o);
            kickComplete();
          }
        } catch (e) {
          if (!t.o.failed) finish(t.o, e);
        }
        poke();
      }
    };

    const producer = async () => {
      try {
        for (let i = 0, size = FIRST_BATCH; i < rows.length && !halted(); i += size, size = MAX_UPLOAD_BATCH) {
          // Keep about one batch ahead of the PUTs, not the whole level (thumbnails are held in memory).
          while (transfers.length > 2 * MAX_UPLOAD_BATCH && !halted())
            await new Promise<void>((r) => (wake = chain(wake, r)));
          if (halted()) break;
          const chunk: Outgoing[] = [];
          for (const row of rows.slice(i, i + size)) {
            uploading.add(row.id);
            try {
              chunk.push(prepare(row));
            } catch (e) {
              finish({ row } as Outgoing, e);
            }
          }
          if (chunk.length === 0) continue;
          let results: UploadBatchItem[];
          try {
            results = await withRetry('reserve uploads', () => cloud.createUploads(chunk.map((o) => o.body)));
          } catch (e) {
            // Not an item's refusal but the call's (offline after the retries, signed out): stop here.
            for (const o of chunk) finish(o, e);
            ctl.stop = true;
            break;
          }
          if (cloud.account() !== account) {
            for (const o of chunk) uploading.delete(o.row.id);
            break;
          }
          chunk.forEach((o, j) => {
            const r = results[j];
            if (r?.status === 'exists') {
              uploaded(account, o.row, r.id);
              finish(o);
            } else if (r?.status === 'pending') {
              idOf.set(o, r.id);
              transfers.push({ o, what: 'image', put: r.image }, { o, what: 'thumb', put: r.thumb });
            } else finish(o, itemError(r?.error));
          });
          poke();
        }
      } finally {
        producing = false;
        poke();
      }
    };

    await Promise.all([producer(), ...Array.from({ length: uploadConcurrency }, transferWorker)]);
    while (completing) await completing;
    // Reserved but never PUT (paused, signed out): no longer "uploading".
    for (const t of transfers) uploading.delete(t.o.row.id);
  }

  async function pushUploads(account: string): Promise<void> {
    const storage = await withRetry('read storage', () => cloud.storage());
    const { fits: queue, overLimit } = fitting(pendingUploads(account), storage);
    setStatus({ storage, overLimit, total: status.total + queue.length });
    const ctl: PushControl = { stop: false, failed: null };
    // An image made from a picture that is waiting too goes up after it, so its metadata can name
    // the picture's cloud id (withInputRefs); a chain goes up level by level.
    let remaining = queue;
    while (remaining.length > 0 && !ctl.stop && !paused && cloud.account() === account) {
      const waiting = new Set(remaining.map((r) => r.id));
      const ready = remaining.filter((r) => !inputRefs(r).some((id) => waiting.has(id)));
      const level = ready.length > 0 ? ready : remaining;
      const taken = new Set(level.map((r) => r.id));
      remaining = remaining.filter((r) => !taken.has(r.id));
      await pushLevel(account, level, ctl);
    }
    if (ctl.failed) throw ctl.failed;
  }

  const localIdOfCloud = (cloudId: string) =>
    (stmt('SELECT id FROM images WHERE cloud_id = ?').get(cloudId) as { id: string } | undefined)?.id ?? null;
  /** Pulled images whose metadata may still name a starting picture by its cloud id. */
  const unresolvedRefs = new Set<string>();
  function resolvePulledRefs(): void {
    for (const id of unresolvedRefs) {
      const row = stmt('SELECT metadata FROM images WHERE id = ?').get(id) as { metadata: string | null } | undefined;
      unresolvedRefs.delete(id);
      if (!row?.metadata) continue;
      const before = JSON.parse(row.metadata) as ImageMetadata;
      const after = withInputRefs(before, localIdOfCloud);
      if (after.init_image !== before.init_image || after.init_mask !== before.init_mask)
        stmt('UPDATE images SET metadata = ? WHERE id = ?').run(JSON.stringify(after), id);
    }
  }

  /** The library ids a row's metadata names as its starting image and mask. */
  function inputRefs(row: LocalImageRow): string[] {
    if (!row.metadata) return [];
    try {
      const m = JSON.parse(row.metadata) as Partial<ImageMetadata>;
      return [m.init_image, m.init_mask].filter((v): v is string => typeof v === 'string');
    } catch {
      return [];
    }
  }

  async function pushEdits(account: string): Promise<void> {
    const rows = stmt(
      'SELECT seq, target, local_id, cloud_id, cloud_account, field, value FROM sync_outbox ORDER BY seq',
    ).all() as {
      seq: number;
      target: 'image' | 'board';
      local_id: string;
      cloud_id: string | null;
      cloud_account: string | null;
      field: string;
      value: string;
    }[];
    const edits: { seq: number; edit: SyncEdit; cloudId: string; field: string }[] = [];
    for (const r of rows) {
      const value = JSON.parse(r.value) as unknown;
      if (r.target === 'image') {
        const img = stmt('SELECT cloud_id, cloud_account FROM images WHERE id = ?').get(r.local_id) as
          { cloud_id: string | null; cloud_account: string | null } | undefined;
        // A purged image's row is gone: the account recorded with the edit decides instead.
        if (!img && r.cloud_account !== account) {
          if (r.cloud_account === null) stmt('DELETE FROM sync_outbox WHERE seq = ?').run(r.seq);
          continue;
        }
        const cloudId = img?.cloud_id ?? r.cloud_id;
        if (!cloudId) {
          // Never uploaded: sent after its upload, or dropped if the image itself is gone.
          if (!img) stmt('DELETE FROM sync_outbox WHERE seq = ?').run(r.seq);
          continue;
        }
        // Only ids this account owns travel: a row of another account (or of none known, such as
        // a cloud image from before accounts were recorded) waits for its own account.
        if (img && img.cloud_account !== account) {
          continue;
        }
        const field = r.field as 'starred' | 'boardId' | 'deleted';
        edits.push({
          seq: r.seq,
          cloudId,
          field,
          edit: { target: 'image', id: cloudId, field, value, baseVersion: version(cloudId, field) } as SyncEdit,
        });
      } else {
        const b = stmt('SELECT cloud_account FROM boards WHERE id = ?').get(r.local_id) as
          { cloud_account: string | null } | undefined;
        if (b?.cloud_account && b.cloud_account !== account) continue;
        const field = r.field as 'create' | 'name' | 'boardDeleted';
        const edit = (
          field === 'create'
            ? { target: 'board', id: r.local_id, field, value }
            : { target: 'board', id: r.local_id, field, value, baseVersion: version(r.local_id, field) }
        ) as SyncEdit;
        edits.push({ seq: r.seq, cloudId: r.local_id, field, edit });
      }
    }
    for (let i = 0; i < edits.length; i += 100) {
      const batch = edits.slice(i, i + 100);
      const results = await withRetry('send edits', () => cloud.edits(batch.map((b) => b.edit)));
      db.transaction(() => {
        batch.forEach((b, j) => {
          const r = results[j]!;
          if (r.version !== undefined) setVersion(b.cloudId, b.field, r.version);
          if (b.edit.target === 'board' && b.field === 'create' && r.outcome !== 'rejected')
            stmt('UPDATE boards SET cloud_id = ?, cloud_account = ? WHERE id = ?').run(b.cloudId, account, b.cloudId);
          if (r.outcome === 'rejected') log(`sync: edit ${b.field} of ${b.cloudId} refused: ${r.code ?? ''}`);
          stmt('DELETE FROM sync_outbox WHERE seq = ?').run(b.seq);
        });
      })();
    }
  }

  // ── pull ─────────────────────────────────────────────────────────────────────────────────────
  const hasPending = (target: 'image' | 'board', localId: string, field: string) =>
    !!stmt('SELECT 1 FROM sync_outbox WHERE target = ? AND local_id = ? AND field = ?').get(target, localId, field);

  function applyBoard(account: string, c: Extract<SyncChange, { kind: 'board' }>): void {
    const local = stmt('SELECT id, name, deleted_at FROM boards WHERE id = ?').get(c.id) as
      { id: string; name: string; deleted_at: string | null } | undefined;
    const now = iso();
    if (!local) {
      stmt(
        'INSERT INTO boards (id, name, cloud_id, cloud_account, created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(c.id, c.name, c.id, account, now, now, c.deleted ? now : null);
    } else {
      if (!hasPending('board', c.id, 'name') && local.name !== c.name)
        stmt('UPDATE boards SET name = ?, updated_at = ? WHERE id = ?').run(c.name, now, c.id);
      if (!hasPending('board', c.id, 'boardDeleted') && (local.deleted_at !== null) !== c.deleted) {
        stmt('UPDATE boards SET deleted_at = ?, updated_at = ? WHERE id = ?').run(c.deleted ? now : null, now, c.id);
        if (c.deleted) stmt('UPDATE images SET board_id = NULL WHERE board_id = ?').run(c.id);
      }
      stmt('UPDATE boards SET cloud_id = ?, cloud_account = ? WHERE id = ?').run(c.id, account, c.id);
    }
    setVersion(c.id, 'name', c.versions.name);
    setVersion(c.id, 'boardDeleted', c.versions.deleted);
  }

  const localBoard = (id: string | null) =>
    id && stmt('SELECT 1 FROM boards WHERE id = ? AND deleted_at IS NULL').get(id) ? id : null;

  async function applyImage(account: string, c: Extract<SyncChange, { kind: 'image' }>): Promise<void> {
    const local = stmt('SELECT id, starred, board_id, deleted_at FROM images WHERE cloud_id = ?').get(c.id) as
      { id: string; starred: number; board_id: string | null; deleted_at: string | null } | undefined;
    const now = iso();
    if (!local) {
      if (c.deleted || (!c.image.url && !c.image.thumbUrl)) return;
      let savedId: string;
      if (c.image.thumbUrl) {
        // The thumbnail now, the full PNG later (the downloader, or on demand).
        // Straight into a file of the library's (a cache: not fsynced), never through this thread.
        const file = library.tempFile();
        await withRetry('download thumbnail', () => cloud.downloadFile(c.image.thumbUrl!, file, false));
        const thumb = { file };
        // Another pass (or a cloud job) may have recorded it meanwhile.
        if (stmt('SELECT 1 FROM images WHERE cloud_id = ?').get(c.id)) return void rmSync(file, { force: true });
        savedId = (
          await library.addCloudThumb(
            {
              cloudId: c.id,
              thumb,
              metadata: withInputRefs(c.image.metadata, localIdOfCloud),
              sha256: c.image.sha256,
              size: c.image.size,
              width: c.image.width,
              height: c.image.height,
              starred: c.image.starred,
              boardId: localBoard(c.image.boardId),
            },
            account,
          )
        ).id;
        if (c.image.url && fullUrls.size < MAX_KEPT_URLS) fullUrls.set(c.id, c.image.url);
      } else {
        // No thumbnail in the cloud: the image itself now (the library makes its thumbnail).
        const png = await withRetry('download image', () => cloud.download(c.image.url!));
        if (stmt('SELECT 1 FROM images WHERE cloud_id = ?').get(c.id)) return;
        savedId = (
          await library.saveImage({
            png,
            origin: 'cloud',
            metadata: withInputRefs(c.image.metadata, localIdOfCloud),
            cloudId: c.id,
            starred: c.image.starred,
            boardId: localBoard(c.image.boardId),
          })
        ).id;
      }
      // Its starting picture may come later in the feed (downloads run side by side): named again then.
      if (c.image.metadata.init_image !== undefined || c.image.metadata.init_mask !== undefined)
        unresolvedRefs.add(savedId);
      // One commit for what is left of this change, not one per statement.
      db.transaction(() => {
        stmt('UPDATE images SET cloud_account = ? WHERE id = ?').run(account, savedId);
        setVersions(c);
      })();
    } else
      db.transaction(() => {
        const set = (sql: string, ...args: unknown[]) =>
          stmt(`UPDATE images SET ${sql}, updated_at = ? WHERE id = ?`).run(...args, now, local.id);
        if (!hasPending('image', local.id, 'starred') && !!local.starred !== c.image.starred)
          set('starred = ?', c.image.starred ? 1 : 0);
        if (!hasPending('image', local.id, 'boardId') && local.board_id !== c.image.boardId)
          set('board_id = ?', localBoard(c.image.boardId));
        if (!hasPending('image', local.id, 'deleted') && (local.deleted_at !== null) !== c.deleted)
          set('deleted_at = ?, delete_token = NULL', c.deleted ? now : null);
        setVersions(c);
      })();
  }

  function setVersions(c: Extract<SyncChange, { kind: 'image' }>): void {
    setVersion(c.id, 'starred', c.versions.starred);
    setVersion(c.id, 'boardId', c.versions.boardId);
    setVersion(c.id, 'deleted', c.versions.deleted);
  }

  async function pull(account: string): Promise<string[]> {
    const key = `cursor:${account}`;
    let cursor = getState(key) ?? '';
    const changed: string[] = [];
    const read = (from: string) => {
      const p = withRetry('read changes', () => cloud.changes(from, PAGE_SIZE));
      p.catch(() => undefined); // a prefetch left behind (paused, signed out) must not crash the process
      return p;
    };
    // The next page is read while this one downloads: its presigned URLs live 15 minutes, far
    // longer than a page takes, and the feed round trip no longer stalls the downloads.
    let nextPage = read(cursor);
    for (;;) {
      if (paused || cloud.account() !== account) return changed;
      const page = await nextPage;
      if (page.hasMore) nextPage = read(page.nextCursor);
      // New images count towards "n of m"; edits of images already here are applied but not counted
      // (counting them made a pass say "250 of 200").
      const arriving = new Set(
        page.items
          .filter((c) => c.kind === 'image' && !c.deleted && !stmt('SELECT 1 FROM images WHERE cloud_id = ?').get(c.id))
          .map((c) => c.id),
      );
      setStatus({ total: status.total + arriving.size });
      // Boards first: an image of this page may move onto a board created in it.
      for (const c of page.items) if (c.kind === 'board') db.transaction(() => applyBoard(account, c))();
      const images = page.items.filter((c): c is Extract<SyncChange, { kind: 'image' }> => c.kind === 'image');
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < images.length; i = next++) {
          await applyImage(account, images[i]!);
          changed.push(images[i]!.id);
          if (arriving.has(images[i]!.id)) {
            setStatus({ done: status.done + 1 });
            kickDownloads();
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      // The cursor moves only after the whole page is applied: a crash re-applies it (idempotent).
      cursor = page.nextCursor;
      setState(key, cursor);
      // After the page's tombstones: full images left by an earlier run (a restart) resume here
      // too, and one deleted meanwhile in the cloud is not fetched. Also says how many wait.
      kickDownloads(true);
      if (!page.hasMore) return changed;
    }
  }

  // ── full images: background and on demand ──────────────────────────────────────────────────
  /** Feed URLs of full images by cloud id (used while fresh; a restart asks the API instead). */
  const fullUrls = new Map<string, string>();
  /** Local ids someone is waiting for (`fetchFull`): their downloads report progress. */
  const watched = new Set<string>();
  /** Local ids being fetched: an on-demand request joins the download already running. */
  const inFlight = new Map<string, Promise<void>>();
  /** The background downloader's current round (null when no worker runs). */
  let round: {
    account: string;
    /** Rows that failed in this round: retried in the next one, not again now. */
    failed: string[];
    /** Offline: no more picks this round. */
    stop: boolean;
    settled: Promise<void>;
    settle: () => void;
  } | null = null;
  let workers = 0;
  let downloadsDone = 0;

  const waitingDownloads = (account: string) =>
    (
      stmt('SELECT count(*) AS n FROM images WHERE full_pending = 1 AND deleted_at IS NULL AND cloud_account = ?').get(
        account,
      ) as { n: number }
    ).n;
  function downloadStatus(): void {
    // A download that lands after the app closed its database has nothing left to report to.
    if (!db.open) return;
    const account = cloud.account();
    const waiting = account ? waitingDownloads(account) : 0;
    if (waiting === 0 && workers === 0) downloadsDone = 0;
    setStatus({ downloads: { done: downloadsDone, total: downloadsDone + waiting, waiting } });
  }

  async function fullUrl(cloudId: string, fresh: boolean): Promise<string> {
    const kept = fullUrls.get(cloudId);
    if (!fresh && kept && presignedExpiry(kept) - Date.now() > URL_MARGIN_MS) return kept;
    fullUrls.delete(cloudId);
    const image = await cloud.image(cloudId);
    if (!image.url) throw new AppError('STORAGE_UNAVAILABLE', `no download URL for ${cloudId}`);
    return image.url;
  }

  /**
   * Fetches one row's full PNG (joining a download already under way). Nothing for a row that is
   * here already, gone, tombstoned, or another account's.
   */
  function fetchOne(localId: string, tries = attempts): Promise<void> {
    const running = inFlight.get(localId);
    if (running) return running;
    const row = stmt('SELECT cloud_id, cloud_account, full_pending, deleted_at FROM images WHERE id = ?').get(
      localId,
    ) as
      | { cloud_id: string | null; cloud_account: string | null; full_pending: number; deleted_at: string | null }
      | undefined;
    if (!row?.full_pending || row.deleted_at !== null || !row.cloud_id) return Promise.resolve();
    const cloudId = row.cloud_id;
    if (cloud.account() === null || row.cloud_account !== cloud.account())
      return Promise.reject(
        new AppError('IMAGE_NOT_DOWNLOADED', `image ${localId} belongs to another account`, {
          userMessage: 'This image is in the cloud gallery of another account. Sign in to that account to download it.',
        }),
      );
    const p = (async () => {
      let attempt = 0;
      // After a failure the URL may have expired (or the body was wrong): a fresh one each retry.
      // Straight to disk, hashed on the way (decision 0162); the library checks it and commits.
      const arrived = await withRetry(
        'download image',
        async () => {
          const url = await fullUrl(cloudId, attempt++ > 0);
          // Progress only while someone waits for this image (the Viewer opened it).
          const progress = (received: number, total: number | null) => {
            if (watched.has(localId)) opts.onDownloadProgress?.(localId, received, total);
          };
          return library.completeFull(localId, (tmp) =>
            cloud.downloadFile(url, tmp, true, opts.onDownloadProgress ? progress : undefined),
          );
        },
        tries,
      );
      if (arrived) {
        fullUrls.delete(cloudId);
        downloadsDone++;
        opts.onDownloaded?.(localId);
      }
    })().finally(() => inFlight.delete(localId));
    inFlight.set(localId, p);
    return p;
  }

  /**
   * Tops the background downloader up to `concurrency` workers (idempotent; called after each
   * applied feed page, so workers that ran out of rows while the feed was arriving come back).
   * Not after every row: with the pull's own thumbnail downloads that put twice the streams on
   * S3, and bench:sync measured it slower (0.55–0.66× aws against 0.67–0.78× per page).
   * A round ends when its last worker finds nothing; rows that failed in a round wait for the next.
   */
  function kickDownloads(report = false): void {
    const account = cloud.account();
    if (paused || !account) return;
    if (report) downloadStatus();
    if (round && (round.account !== account || round.stop)) return;
    if (!round) {
      let settle!: () => void;
      const settled = new Promise<void>((r) => (settle = r));
      round = { account, failed: [], stop: false, settled, settle };
      if (!report) downloadStatus();
    }
    const r = round;
    while (workers < concurrency) {
      workers++;
      void downloadWorker(r)
        .catch((e: unknown) => log('sync: a download worker stopped', e))
        .finally(() => {
          if (--workers > 0) return;
          round = null;
          downloadStatus();
          r.settle();
        });
    }
  }

  async function downloadWorker(r: NonNullable<typeof round>): Promise<void> {
    const pick = () =>
      (
        stmt(
          `SELECT id FROM images WHERE full_pending = 1 AND deleted_at IS NULL AND cloud_account = ?
               AND id NOT IN (SELECT value FROM json_each(?)) ORDER BY id DESC LIMIT 1`,
        ).get(r.account, JSON.stringify([...r.failed, ...inFlight.keys()])) as { id: string } | undefined
      )?.id;
    for (;;) {
      if (r.stop || paused || !db.open || cloud.account() !== r.account) return;
      const id = pick();
      if (!id) return;
      try {
        await fetchOne(id);
      } catch (e) {
        if (!db.open) return;
        r.failed.push(id);
        const err = AppError.is(e) ? e : new AppError('INTERNAL', String(e));
        stmt('UPDATE images SET download_attempts = download_attempts + 1, download_error = ? WHERE id = ?').run(
          `${err.code}: ${err.message}`,
          id,
        );
        log(`sync: download of ${id} failed`, e);
        // Offline: the next pass (on reconnect) starts again; the rest would fail the same way.
        if (err.code === 'OFFLINE') r.stop = true;
      }
      downloadStatus();
    }
  }

  /**
   * The full PNG of a row that came with its thumbnail only, now, ahead of the background queue
   * (the Viewer, a starting image, Reveal). Tries twice, not five times: a person is waiting.
   * IMAGE_NOT_DOWNLOADED with a sentence to act on when it cannot be had.
   */
  async function fetchFull(localId: string): Promise<void> {
    watched.add(localId);
    try {
      await fetchOne(localId, Math.min(attempts, 2));
    } catch (e) {
      if (AppError.is(e, 'IMAGE_NOT_DOWNLOADED')) throw e;
      const offline = AppError.is(e, 'OFFLINE');
      const gone = AppError.is(e, 'NOT_FOUND');
      throw new AppError('IMAGE_NOT_DOWNLOADED', `image ${localId} could not be downloaded`, {
        retryable: !gone,
        cause: e,
        userMessage: offline
          ? 'You are offline, so the full image cannot be downloaded. Connect to the internet and try again.'
          : gone
            ? 'This image was deleted from your cloud gallery, so it cannot be downloaded.'
            : 'The full image could not be downloaded. Try again in a moment.',
      });
    } finally {
      watched.delete(localId);
      downloadStatus();
    }
  }

  // ── passes ───────────────────────────────────────────────────────────────────────────────────
  async function pass(): Promise<void> {
    const account = cloud.account();
    if (!account) return setStatus({ state: 'signed_out', done: 0, total: 0 });
    if (paused) return setStatus({ state: 'paused' });
    setStatus({ state: 'syncing', done: 0, total: 0, error: null, errorCode: null });
    try {
      await pushUploads(account);
      await pushEdits(account);
      await pull(account);
      resolvePulledRefs();
      const at = iso();
      setState('last_sync_at', at);
      setStatus({ state: paused ? 'paused' : 'idle', lastSyncAt: at });
      // Everything else synced; what did not fit is an error the person can act on (Upgrade).
      if (status.overLimit && status.storage) {
        const { images } = status.overLimit;
        throw new AppError(
          'QUOTA_STORAGE_EXCEEDED',
          `${images} image${images === 1 ? '' : 's'} did not fit in the cloud storage`,
          {
            userMessage: `${images} image${images === 1 ? ' does' : 's do'} not fit in your cloud storage (${mb(status.storage.used)} of ${mb(status.storage.limit)} used). Upgrade for more storage, or delete images you no longer need; they stay on this computer meanwhile.`,
          },
        );
      }
    } catch (e) {
      const err = AppError.is(e) ? e : new AppError('INTERNAL', String(e));
      setStatus({
        state: err.code === 'OFFLINE' ? 'offline' : 'error',
        error: err.userMessage,
        errorCode: err.code,
      });
      throw err;
    }
  }

  return {
    recordEdit,
    /** One pass now (joins a pass already running, then runs once more). */
    async syncOnce(): Promise<void> {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        try {
          do {
            again = false;
            await pass();
          } while (again);
        } finally {
          running = null;
        }
      })();
      return running;
    },
    pause(): void {
      paused = true;
      setStatus({ state: 'paused' });
    },
    resume(): void {
      paused = false;
      setStatus({ state: cloud.account() ? 'idle' : 'signed_out' });
      kickDownloads();
    },
    fetchFull,
    /** Starts the background downloads of full images still waiting (also done by every pass). */
    kickDownloads,
    /** Resolves when the background downloader has stopped (nothing left, paused, or offline). */
    async downloadsSettled(): Promise<void> {
      while (round) await round.settled;
    },
    status: () => status,
    /** The sync badge of a local image row (null cloud id: waiting or in flight). */
    isUploading: (localId: string) => uploading.has(localId),
    /** The image did not fit in the cloud storage left at the last pass, so it is not uploading. */
    doesNotFit: (localId: string) => overLimitIds.has(localId),
    /** Unit: bytes of the images waiting for their first upload under the signed-in account. */
    pendingBytes(): number {
      const account = cloud.account();
      return account ? pendingUploads(account).reduce((n, r) => n + r.size, 0) : 0;
    },
    /** Local images waiting for their first upload under the signed-in account. */
    pending(): number {
      const account = cloud.account();
      return account ? pendingUploads(account).length : 0;
    },
  };
}
export type SyncEngine = ReturnType<typeof createSyncEngine>;
