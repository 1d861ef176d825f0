/**
 * The local gallery: image rows in SQLite, PNG bytes on disk. A file is written to a temp name,
 * fsynced and renamed into place (and the folder fsynced) BEFORE its row is inserted, so a crash
 * leaves at worst an orphan file, never a row without bytes; `repair()` at startup removes
 * orphans both ways. Deleting is soft with an undo token; `purgeDeleted` removes rows then files.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { AppError, newId } from '@atelier/common';
import type { ImageMetadata, LibraryImage, LibraryQuery, LibraryPage, LocalBoard } from '@atelier/common';
import type { Clock } from './clock.ts';
import { statementCache, type Db } from './db.ts';
import { metadataOf, readPngInfo } from './png.ts';
import { makeThumbnail, thumbFileName } from './thumbnails.ts';

export type LibraryQueryInput = z.output<typeof LibraryQuery>;
export type LibraryPageValue = z.output<typeof LibraryPage>;
export type LocalBoardValue = z.output<typeof LocalBoard>;

export interface AddImageInput {
  png: Uint8Array;
  origin: 'local' | 'cloud' | 'imported';
  /** Defaults to what the PNG's `invokeai_metadata` chunk says. */
  metadata?: ImageMetadata | null;
  jobId?: string | null;
  cloudId?: string | null;
  boardId?: string | null;
  starred?: boolean;
  /** 'mask': a painted inpainting mask, kept out of the gallery and sync (decision 0155). */
  role?: 'image' | 'mask';
  /** A thumbnail that came with the image (a cloud download); otherwise one is made from the PNG. */
  thumb?: Uint8Array | null;
}

/** What the gallery badge says about an image's place in the cloud (issue 13). */
export type CloudPlace = 'local' | 'uploading' | 'cloud';

export interface LibraryOptions {
  db: Db;
  filesDir: string;
  clock: Clock;
  /** The URL the renderer loads an image file from (app:// in Electron, http://127.0.0.1 in the host). */
  urlFor: (fileName: string) => string;
  /**
   * The signed-in cloud account (null when signed out). When given, images synced down from
   * another account's cloud gallery are left out of the view; local images always stay (issue 13).
   */
  visibleAccount?: () => string | null;
  /** The cloud badge of an image (the gallery sync decides); absent in local-only mode. */
  cloudPlace?: (row: { id: string; cloud_id: string | null; origin: string }) => CloudPlace | undefined;
  /**
   * Fetches the full PNG of a row synced down with its thumbnail only (the sync engine's
   * on-demand download); absent, such a file cannot be had and `localPath` says so.
   */
  fetchFull?: (id: string) => Promise<void>;
}

/** What the cloud says about an image whose full PNG is fetched later (issue 13). */
export interface CloudThumbInput {
  cloudId: string;
  /** The thumbnail's bytes, or a file of the library's `tempFile()` that holds them (moved into place). */
  thumb: Uint8Array | { file: string };
  metadata: ImageMetadata;
  /** Of the full PNG, as the cloud recorded it: checked when the bytes arrive. */
  sha256: string;
  /** Unit: bytes of the full PNG. */
  size: number;
  width: number;
  height: number;
  starred?: boolean;
  boardId?: string | null;
}

interface ImageRow {
  id: string;
  board_id: string | null;
  starred: number;
  origin: 'local' | 'cloud' | 'imported';
  width: number;
  height: number;
  metadata: string | null;
  file_name: string;
  created_at: string;
  cloud_id: string | null;
  /** 1: only the thumbnail is here; the full PNG is still in the cloud. */
  full_pending: number;
}

export type Library = ReturnType<typeof createLibrary>;

export function createLibrary({ db, filesDir, clock, urlFor, visibleAccount, cloudPlace, fetchFull }: LibraryOptions) {
  const iso = () => clock.now().toISOString();
  const stmt = statementCache(db);

  function toImage(row: ImageRow): LibraryImage {
    const url = urlFor(row.file_name);
    const thumb = thumbFileName(row.file_name);
    const place = cloudPlace?.(row);
    return {
      id: row.id,
      boardId: row.board_id,
      starred: row.starred === 1,
      origin: row.origin,
      width: row.width,
      height: row.height,
      metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as ImageMetadata),
      url,
      // Images saved before thumbnails existed (or that cannot be decoded) show the full picture.
      thumbUrl: existsSync(path.join(filesDir, thumb)) ? urlFor(thumb) : url,
      createdAt: row.created_at,
      ...(place ? { cloud: place } : {}),
      ...(row.full_pending ? { downloaded: false } : {}),
    };
  }

  /** temp + fsync + rename + fsync(dir): after this returns the bytes survive a crash under their final name. */
  function writeDurably(fileName: string, bytes: Uint8Array): void {
    const tmp = path.join(filesDir, `.tmp-${randomBytes(8).toString('hex')}`);
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      let off = 0;
      while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path.join(filesDir, fileName));
    const dirFd = openSync(filesDir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }

  /** A new file with `bytes`, fsynced (not yet under its final name). */
  async function writeFileDurably(file: string, bytes: Uint8Array): Promise<void> {
    const fh = await fsp.open(file, 'wx', 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async function writeDurablyAsync(fileName: string, bytes: Uint8Array): Promise<void> {
    const tmp = path.join(filesDir, `.tmp-${randomBytes(8).toString('hex')}`);
    await writeFileDurably(tmp, bytes);
    await fsp.rename(tmp, path.join(filesDir, fileName));
    const dir = await fsp.open(filesDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  const insertImage = stmt(`
    INSERT INTO images (id, board_id, starred, origin, width, height, metadata, prompt, file_name, sha256, size,
                        job_id, cloud_id, cloud_account, role, created_at, updated_at)
    VALUES (@id, @board_id, @starred, @origin, @width, @height, @metadata, @prompt, @file_name, @sha256, @size,
            @job_id, @cloud_id, @cloud_account, @role, @created_at, @created_at)`);
  const getRow = db.prepare<[string], ImageRow>('SELECT * FROM images WHERE id = ? AND deleted_at IS NULL');

  function prepare(input: AddImageInput) {
    const info = readPngInfo(input.png);
    if (!info) throw new AppError('BAD_REQUEST', 'not a PNG image');
    const metadata = input.metadata === undefined ? metadataOf(info) : input.metadata;
    const id = newId('img');
    const fileName = `${id}.png`;
    const row = {
      id,
      board_id: input.boardId ?? null,
      starred: input.starred ? 1 : 0,
      origin: input.origin,
      width: info.width,
      height: info.height,
      metadata: metadata ? JSON.stringify(metadata) : null,
      prompt: metadata?.positive_prompt ?? '',
      file_name: fileName,
      sha256: createHash('sha256').update(input.png).digest('hex'),
      size: input.png.byteLength,
      job_id: input.jobId ?? null,
      cloud_id: input.cloudId ?? null,
      role: input.role ?? 'image',
      // A cloud image belongs to the account signed in when it arrived (a cloud job's result): the
      // sync engine then never sends its id on another account's behalf.
      cloud_account: input.cloudId ? (visibleAccount?.() ?? null) : null,
      created_at: iso(),
    };
    return { row, fileName };
  }

  function commit(row: ReturnType<typeof prepare>['row']): LibraryImage {
    try {
      db.transaction(() => insertImage.run(row))();
    } catch (e) {
      rmSync(path.join(filesDir, row.file_name), { force: true });
      throw e;
    }
    return toImage(getRow.get(row.id)!);
  }

  /**
   * The thumbnail is a cache beside the image: written without fsync (a crash loses at worst a
   * thumbnail, which `thumbnail()` makes again), never blocking the save it belongs to.
   */
  function writeThumb(fileName: string, bytes: Uint8Array | null): void {
    if (!bytes) return;
    try {
      writeFileSync(path.join(filesDir, thumbFileName(fileName)), bytes);
    } catch {
      // Disk full or read-only: the grid shows the full image instead.
    }
  }

  /** Synchronous: for tools and seeding. The app's own paths use `saveImage`, which keeps the event loop free. */
  function addImage(input: AddImageInput): LibraryImage {
    const { row, fileName } = prepare(input);
    writeDurably(fileName, input.png);
    writeThumb(fileName, input.thumb ?? makeThumbnail(input.png));
    return commit(row);
  }

  /** Same guarantees as addImage, with the file I/O (write, fsync, rename) off the event loop. */
  async function saveImage(input: AddImageInput): Promise<LibraryImage> {
    const { row, fileName } = prepare(input);
    await writeDurablyAsync(fileName, input.png);
    writeThumb(fileName, input.thumb ?? makeThumbnail(input.png));
    return commit(row);
  }

  /**
   * A cloud image as its thumbnail and record, the full PNG to follow (`completeFull`): the
   * gallery shows it at once. The thumbnail is written before the row (a row is never without a
   * picture to show); a crash between them leaves an orphan file that `repair()` removes. When
   * the cloud image was recorded meanwhile (a cloud job's result), that row is returned instead.
   */
  async function addCloudThumb(input: CloudThumbInput, account: string | null): Promise<LibraryImage> {
    const id = newId('img');
    const fileName = `${id}.png`;
    const thumbPath = path.join(filesDir, thumbFileName(fileName));
    if (input.thumb instanceof Uint8Array) await fsp.writeFile(thumbPath, input.thumb);
    else await fsp.rename(input.thumb.file, thumbPath);
    const row = {
      id,
      board_id: input.boardId ?? null,
      starred: input.starred ? 1 : 0,
      origin: 'cloud' as const,
      width: input.width,
      height: input.height,
      metadata: JSON.stringify(input.metadata),
      prompt: input.metadata.positive_prompt,
      file_name: fileName,
      sha256: input.sha256,
      size: input.size,
      job_id: null,
      cloud_id: input.cloudId,
      cloud_account: account,
      role: 'image',
      created_at: iso(),
    };
    let kept: string;
    try {
      kept = db.transaction(() => {
        // Recorded meanwhile (a cloud job's result, another pass) while the thumbnail was written.
        const there = stmt('SELECT id FROM images WHERE cloud_id = ?').get(input.cloudId) as { id: string } | undefined;
        if (there) return there.id;
        insertImage.run(row);
        stmt('UPDATE images SET full_pending = 1 WHERE id = ?').run(id);
        return id;
      })();
    } catch (e) {
      rmSync(path.join(filesDir, thumbFileName(fileName)), { force: true });
      throw e;
    }
    if (kept !== id) rmSync(path.join(filesDir, thumbFileName(fileName)), { force: true });
    return toImage(getRowAny(kept));
  }

  /** A new name in the library's folder for bytes on their way in (`repair()` removes leftovers). */
  function tempFile(): string {
    return path.join(filesDir, `.tmp-${randomBytes(8).toString('hex')}`);
  }

  /** Full images whose bytes are in a temp file, waiting for the next group commit. */
  let arrivals: { id: string; tmp: string; fileName: string; done: (e: unknown, changed: boolean) => void }[] = [];
  let committing = false;
  const markFull = stmt(
    'UPDATE images SET full_pending = 0, download_error = NULL, updated_at = ? WHERE id = ? AND full_pending = 1',
  );
  /**
   * Renames every waiting arrival into place, fsyncs the folder once and marks all their rows in
   * one transaction: one directory sync and one commit per group instead of per image (a group is
   * whatever arrived while the previous one was being committed).
   */
  async function commitArrivals(): Promise<void> {
    committing = true;
    try {
      while (arrivals.length > 0) {
        const group = arrivals;
        arrivals = [];
        const renamed = await Promise.allSettled(group.map((a) => fsp.rename(a.tmp, path.join(filesDir, a.fileName))));
        const placed = group.filter((a, i) => {
          const r = renamed[i]!;
          if (r.status === 'rejected') {
            void fsp.rm(a.tmp, { force: true });
            a.done(r.reason, false);
          }
          return r.status === 'fulfilled';
        });
        if (placed.length === 0) continue;
        try {
          const dir = await fsp.open(filesDir, 'r');
          try {
            await dir.sync();
          } finally {
            await dir.close();
          }
          const now = iso();
          const changed = db.transaction(() => placed.map((a) => markFull.run(now, a.id).changes > 0))();
          placed.forEach((a, i) => a.done(null, changed[i]!));
        } catch (e) {
          for (const a of placed) a.done(e, false);
        }
      }
    } finally {
      committing = false;
    }
  }

  /**
   * The full PNG of a row added by `addCloudThumb` has arrived: checked against the sha256 the
   * cloud recorded (a wrong or truncated body is refused, nothing kept), written durably, then
   * the row says so. `source` is the bytes, or a function that writes them into the temp file it
   * is given (fsynced) and says what it wrote, so a download streams to disk without passing
   * through one big buffer (decision 0162). Returns false when the row is gone or was completed
   * meanwhile (then nothing is fetched).
   */
  async function completeFull(
    id: string,
    source: Uint8Array | ((tmpFile: string) => Promise<{ size: number; sha256: string }>),
  ): Promise<boolean> {
    const row = stmt('SELECT file_name, sha256, full_pending FROM images WHERE id = ?').get(id) as
      { file_name: string; sha256: string; full_pending: number } | undefined;
    if (!row || !row.full_pending) return false;
    const tmp = tempFile();
    let got: { size: number; sha256: string };
    if (typeof source === 'function') got = await source(tmp);
    else {
      got = { size: source.byteLength, sha256: createHash('sha256').update(source).digest('hex') };
      if (got.sha256 === row.sha256)
        await writeFileDurably(tmp, source).catch(async (e: unknown) => {
          await fsp.rm(tmp, { force: true });
          throw e;
        });
    }
    if (got.sha256 !== row.sha256) {
      await fsp.rm(tmp, { force: true });
      throw new AppError('CHECKSUM_MISMATCH', `the downloaded image ${id} does not match its sha256`, {
        retryable: true,
      });
    }
    return new Promise<boolean>((resolve, reject) => {
      arrivals.push({ id, tmp, fileName: row.file_name, done: (e, changed) => (e ? reject(e) : resolve(changed)) });
      if (!committing) void commitArrivals();
    });
  }

  const notDownloaded = (id: string) =>
    new AppError('IMAGE_NOT_DOWNLOADED', `image ${id} is not downloaded yet`, {
      retryable: true,
      userMessage:
        'This image is in your cloud gallery but not downloaded to this computer yet. Open it to download it, or check your connection and try again.',
    });

  /**
   * The file of a live image, fetched first when only its thumbnail is here (never a path to a
   * file that does not exist). IMAGE_NOT_DOWNLOADED when it cannot be fetched.
   */
  async function localPath(id: string): Promise<string> {
    const row = getRow.get(id);
    if (!row) throw new AppError('NOT_FOUND', `image ${id} not found`);
    if (row.full_pending) {
      if (!fetchFull) throw notDownloaded(id);
      await fetchFull(id);
      if ((getRow.get(id)?.full_pending ?? 1) !== 0) throw notDownloaded(id);
    }
    return path.join(filesDir, row.file_name);
  }

  function get(id: string): LibraryImage {
    const row = getRow.get(id);
    if (!row) throw new AppError('NOT_FOUND', `image ${id} not found`);
    return toImage(row);
  }

  function filters(q: Omit<LibraryQueryInput, 'cursor' | 'limit'>): {
    where: string[];
    params: Record<string, unknown>;
  } {
    const where = ['deleted_at IS NULL', "role = 'image'"];
    const params: Record<string, unknown> = {};
    if (visibleAccount) {
      where.push("(origin != 'cloud' OR cloud_account IS NULL OR cloud_account = @account)");
      params.account = visibleAccount() ?? '';
    }
    if (q.boardId === 'none') where.push('board_id IS NULL');
    else if (q.boardId !== undefined) {
      where.push('board_id = @boardId');
      params.boardId = q.boardId;
    }
    if (q.starred !== undefined) {
      where.push('starred = @starred');
      params.starred = q.starred ? 1 : 0;
    }
    const search = q.search?.trim();
    if (search) {
      // Every word must appear in the prompt, case-insensitively; LIKE wildcards in the input are literal.
      search.split(/\s+/).forEach((word, i) => {
        where.push(`prompt LIKE @w${i} ESCAPE '\\'`);
        params[`w${i}`] = `%${word.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      });
    }
    return { where, params };
  }

  /** Newest first. The cursor is the last id of the previous page (ids sort by creation time). */
  function list(q: LibraryQueryInput): LibraryPageValue {
    const { where, params } = filters(q);
    const total = (
      db.prepare(`SELECT count(*) AS n FROM images WHERE ${where.join(' AND ')}`).get(params) as { n: number }
    ).n;
    const pageWhere = [...where];
    if (q.cursor) {
      pageWhere.push('id < @cursor');
      params.cursor = q.cursor;
    }
    const rows = db.prepare(`SELECT * FROM images WHERE ${pageWhere.join(' AND ')} ORDER BY id DESC LIMIT @limit`).all({
      ...params,
      limit: q.limit + 1,
    }) as ImageRow[];
    const more = rows.length > q.limit;
    const items = rows.slice(0, q.limit).map(toImage);
    return { items, nextCursor: more ? items[items.length - 1]!.id : null, total };
  }

  function update(ids: string[], patch: { starred?: boolean; boardId?: string | null }): void {
    if (patch.boardId) requireBoard(patch.boardId);
    const now = iso();
    db.transaction(() => {
      for (const id of ids) {
        if (!getRow.get(id)) throw new AppError('NOT_FOUND', `image ${id} not found`);
        if (patch.starred !== undefined)
          stmt('UPDATE images SET starred = ?, updated_at = ? WHERE id = ?').run(patch.starred ? 1 : 0, now, id);
        if (patch.boardId !== undefined)
          stmt('UPDATE images SET board_id = ?, updated_at = ? WHERE id = ?').run(patch.boardId, now, id);
      }
    })();
  }

  function remove(ids: string[]): { undoToken: string } {
    const undoToken = `undo_${randomBytes(16).toString('hex')}`;
    const now = iso();
    db.transaction(() => {
      const mark = stmt(
        'UPDATE images SET deleted_at = ?, delete_token = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL',
      );
      for (const id of ids) mark.run(now, undoToken, now, id);
    })();
    return { undoToken };
  }

  /** The images a delete with this undo token removed (to tell the cloud they are back). */
  function idsByUndoToken(undoToken: string): string[] {
    return (stmt('SELECT id FROM images WHERE delete_token = ?').all(undoToken) as { id: string }[]).map((r) => r.id);
  }

  function undoDelete(undoToken: string): number {
    return stmt('UPDATE images SET deleted_at = NULL, delete_token = NULL, updated_at = ? WHERE delete_token = ?').run(
      iso(),
      undoToken,
    ).changes;
  }

  /** Removes images deleted more than `graceMs` ago: rows first (in one transaction), then their files. */
  function purgeDeleted(graceMs: number): number {
    const cutoff = new Date(clock.now().getTime() - graceMs).toISOString();
    const rows = stmt('SELECT id, file_name FROM images WHERE deleted_at IS NOT NULL AND deleted_at <= ?').all(
      cutoff,
    ) as {
      id: string;
      file_name: string;
    }[];
    db.transaction(() => {
      const del = stmt('DELETE FROM images WHERE id = ?');
      for (const r of rows) del.run(r.id);
    })();
    for (const r of rows) {
      rmSync(path.join(filesDir, r.file_name), { force: true });
      rmSync(path.join(filesDir, thumbFileName(r.file_name)), { force: true });
    }
    return rows.length;
  }

  /** Startup repair: temp files and files without a row are removed; rows whose file is gone are removed. */
  function repair(): { removedFiles: number; removedRows: number } {
    const known = new Set(
      (stmt('SELECT file_name FROM images').all() as { file_name: string }[]).map((r) => r.file_name),
    );
    // Rows whose full PNG is still in the cloud have no file yet, by design.
    const awaited = new Set(
      (stmt('SELECT file_name FROM images WHERE full_pending = 1').all() as { file_name: string }[]).map(
        (r) => r.file_name,
      ),
    );
    const onDisk = new Set(readdirSync(filesDir));
    const thumbs = new Set([...known].map(thumbFileName));
    let removedFiles = 0;
    for (const name of onDisk) {
      if (!known.has(name) && !thumbs.has(name)) {
        rmSync(path.join(filesDir, name), { force: true, recursive: true });
        removedFiles++;
      }
    }
    let removedRows = 0;
    db.transaction(() => {
      const del = stmt('DELETE FROM images WHERE file_name = ?');
      for (const name of known) if (!onDisk.has(name) && !awaited.has(name)) removedRows += del.run(name).changes;
    })();
    return { removedFiles, removedRows };
  }

  /** The live image synced from / made by the cloud with this cloud image id, if any. */
  function getByCloudId(cloudId: string): LibraryImage | null {
    const row = stmt('SELECT * FROM images WHERE cloud_id = ? AND deleted_at IS NULL').get(cloudId) as
      ImageRow | undefined;
    return row ? toImage(row) : null;
  }

  /** Replaces what the library records about how an image was made (not the PNG's own chunk). */
  function setMetadata(id: string, metadata: ImageMetadata): void {
    stmt('UPDATE images SET metadata = ?, prompt = ?, updated_at = ? WHERE id = ?').run(
      JSON.stringify(metadata),
      metadata.positive_prompt,
      iso(),
      id,
    );
  }

  /** The live picture (or mask) with these bytes, if the library has it already. */
  function liveBySha(sha256: string, role: 'image' | 'mask'): LibraryImage | null {
    const row = stmt(
      'SELECT * FROM images WHERE sha256 = ? AND role = ? AND deleted_at IS NULL ORDER BY id LIMIT 1',
    ).get(sha256, role) as ImageRow | undefined;
    return row ? toImage(row) : null;
  }

  /** An image's thumbnail bytes, made (once) from the PNG when missing; null when it cannot be made. */
  function thumbnail(id: string): Uint8Array | null {
    const { file_name, full_pending } = getRowAny(id);
    const file = path.join(filesDir, thumbFileName(file_name));
    if (existsSync(file)) return readFileSync(file);
    if (full_pending) return null;
    const made = makeThumbnail(readFileSync(path.join(filesDir, file_name)));
    writeThumb(file_name, made);
    return made;
  }

  function getRowAny(id: string): ImageRow {
    const row = stmt('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
    if (!row) throw new AppError('NOT_FOUND', `image ${id} not found`);
    return row;
  }

  /** The file of a live image that is here; IMAGE_NOT_DOWNLOADED for one still in the cloud (see `localPath`). */
  function pathOf(id: string): string {
    const row = getRow.get(id);
    if (!row) throw new AppError('NOT_FOUND', `image ${id} not found`);
    if (row.full_pending) throw notDownloaded(id);
    return path.join(filesDir, row.file_name);
  }

  async function importPaths(paths: string[]): Promise<{
    imported: number;
    skipped: { path: string; reason: string }[];
    ids: string[];
  }> {
    const skipped: { path: string; reason: string }[] = [];
    const ids: string[] = [];
    const files: string[] = [];
    const walk = (p: string) => {
      let st;
      try {
        st = statSync(p);
      } catch {
        skipped.push({ path: p, reason: 'not found' });
        return;
      }
      if (st.isDirectory()) {
        for (const name of readdirSync(p).sort()) {
          const child = path.join(p, name);
          if (name.toLowerCase().endsWith('.png') || statSync(child).isDirectory()) walk(child);
        }
      } else files.push(p);
    };
    paths.forEach(walk);
    for (const file of files) {
      const bytes = await fsp.readFile(file);
      if (!readPngInfo(bytes)) {
        skipped.push({ path: file, reason: 'not a PNG image' });
        continue;
      }
      if (liveBySha(createHash('sha256').update(bytes).digest('hex'), 'image')) {
        skipped.push({ path: file, reason: 'already in the library' });
        continue;
      }
      ids.push((await saveImage({ png: bytes, origin: 'imported' })).id);
    }
    return { imported: ids.length, skipped, ids };
  }

  // Boards -----------------------------------------------------------------------------------

  function requireBoard(id: string): void {
    if (!stmt('SELECT 1 FROM boards WHERE id = ? AND deleted_at IS NULL').get(id))
      throw new AppError('NOT_FOUND', `board ${id} not found`);
  }

  function board(id: string): LocalBoardValue {
    const row = stmt(
      `SELECT b.id, b.name, (SELECT count(*) FROM images i WHERE i.board_id = b.id AND i.deleted_at IS NULL AND i.role = 'image') AS imageCount
         FROM boards b WHERE b.id = ? AND b.deleted_at IS NULL`,
    ).get(id) as LocalBoardValue | undefined;
    if (!row) throw new AppError('NOT_FOUND', `board ${id} not found`);
    return row;
  }

  const boards = {
    list(): LocalBoardValue[] {
      return stmt(
        `SELECT b.id, b.name, (SELECT count(*) FROM images i WHERE i.board_id = b.id AND i.deleted_at IS NULL AND i.role = 'image') AS imageCount
           FROM boards b WHERE b.deleted_at IS NULL ORDER BY b.name COLLATE NOCASE, b.id`,
      ).all() as LocalBoardValue[];
    },
    create(name: string): LocalBoardValue {
      const id = newId('brd');
      const now = iso();
      stmt('INSERT INTO boards (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)').run(id, name, now, now);
      return board(id);
    },
    rename(id: string, name: string): LocalBoardValue {
      requireBoard(id);
      stmt('UPDATE boards SET name = ?, updated_at = ? WHERE id = ?').run(name, iso(), id);
      return board(id);
    },
    /** The live images on a board. */
    imageIds(id: string): string[] {
      return (
        stmt("SELECT id FROM images WHERE board_id = ? AND deleted_at IS NULL AND role = 'image'").all(id) as {
          id: string;
        }[]
      ).map((r) => r.id);
    },
    /** `keep` moves the board's images to "no board"; `delete` soft-deletes them (purged later). */
    delete(id: string, images: 'keep' | 'delete'): void {
      requireBoard(id);
      const now = iso();
      db.transaction(() => {
        if (images === 'delete')
          stmt(
            'UPDATE images SET deleted_at = ?, updated_at = ?, board_id = NULL WHERE board_id = ? AND deleted_at IS NULL',
          ).run(now, now, id);
        else stmt('UPDATE images SET board_id = NULL, updated_at = ? WHERE board_id = ?').run(now, id);
        stmt('UPDATE boards SET deleted_at = ?, updated_at = ? WHERE id = ?').run(now, now, id);
      })();
    },
  };

  return {
    addImage,
    saveImage,
    get,
    getByCloudId,
    list,
    update,
    delete: remove,
    undoDelete,
    idsByUndoToken,
    purgeDeleted,
    repair,
    pathOf,
    localPath,
    addCloudThumb,
    completeFull,
    tempFile,
    liveBySha,
    setMetadata,
    thumbnail,
    importPaths,
    boards,
  };
}
