import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LibraryQuery } from '@atelier/common';
import type { Clock } from './clock.ts';
import { openDatabase, type Db } from './db.ts';
import { createLibrary } from './library.ts';
import { makePng, pngWithMetadata, sampleMetadata } from './testing/png-fixture.ts';

const opened: Db[] = [];
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
});

function setup(clock: Clock = { now: () => new Date() }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-lib-'));
  const filesDir = path.join(dir, 'images');
  mkdirSync(filesDir);
  const db = openDatabase(path.join(dir, 'library.db'));
  opened.push(db);
  const library = createLibrary({ db, filesDir, clock, urlFor: (f) => `http://files/${f}` });
  return { dir, filesDir, db, library };
}
const q = (input: unknown) => LibraryQuery.parse(input);

describe('library', () => {
  it('uses WAL, NORMAL sync and foreign keys', () => {
    const { db } = setup();
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
  });

  it('stores the bytes on disk and reads metadata from the PNG', () => {
    const { library, filesDir } = setup();
    const png = pngWithMetadata('a red fox in snow', 7);
    const img = library.addImage({ png, origin: 'local' });
    expect(img.metadata?.positive_prompt).toBe('a red fox in snow');
    expect(img.metadata?.seed).toBe(7);
    expect(img).toMatchObject({ width: 8, height: 8, origin: 'local', starred: false, boardId: null });
    expect(img.url).toBe(`http://files/${img.id}.png`);
    expect(readFileSync(path.join(filesDir, `${img.id}.png`))).toEqual(png);
    // The image and its thumbnail (made once, at save), which the grid loads.
    expect(readdirSync(filesDir).sort()).toEqual([`${img.id}.png`, `${img.id}.thumb.png`]);
    expect(img.thumbUrl).toBe(`http://files/${img.id}.thumb.png`);
  });

  it('saves asynchronously with the same result', async () => {
    const { library, filesDir } = setup();
    const png = pngWithMetadata('async heron');
    const img = await library.saveImage({ png, origin: 'cloud', cloudId: 'img_cloud' });
    expect(readFileSync(path.join(filesDir, `${img.id}.png`))).toEqual(png);
    expect(library.getByCloudId('img_cloud')?.id).toBe(img.id);
    expect(readdirSync(filesDir).sort()).toEqual([`${img.id}.png`, `${img.id}.thumb.png`]);
  });

  it('lists newest first with cursor pagination, totals, board, star and prompt search filters', () => {
    const { library } = setup();
    const ids = ['cat on a sofa', 'dog in a park', 'cat and dog', 'a 100% literal_prompt', 'sunset'].map(
      (p) => library.addImage({ png: pngWithMetadata(p), origin: 'local' }).id,
    );
    const page1 = library.list(q({ limit: 2 }));
    expect(page1.total).toBe(5);
    expect(page1.items.map((i) => i.id)).toEqual([ids[4], ids[3]]);
    const page2 = library.list(q({ limit: 2, cursor: page1.nextCursor! }));
    expect(page2.items.map((i) => i.id)).toEqual([ids[2], ids[1]]);
    const page3 = library.list(q({ limit: 2, cursor: page2.nextCursor! }));
    expect(page3.items.map((i) => i.id)).toEqual([ids[0]]);
    expect(page3.nextCursor).toBeNull();

    expect(library.list(q({ search: 'CAT' })).items.map((i) => i.id)).toEqual([ids[2], ids[0]]);
    expect(library.list(q({ search: 'cat dog' })).total).toBe(1);
    expect(library.list(q({ search: '100%' })).total).toBe(1);
    expect(library.list(q({ search: '%' })).total).toBe(1);
    expect(library.list(q({ search: 'c_t' })).total).toBe(0);

    const board = library.boards.create('Animals');
    library.update([ids[0]!, ids[1]!], { boardId: board.id, starred: true });
    expect(library.list(q({ boardId: board.id })).total).toBe(2);
    expect(library.list(q({ boardId: 'none' })).total).toBe(3);
    expect(library.list(q({ starred: true })).items.every((i) => i.starred)).toBe(true);
    expect(library.boards.list()).toEqual([{ id: board.id, name: 'Animals', imageCount: 2 }]);
    expect(library.boards.rename(board.id, 'Pets').name).toBe('Pets');
    library.boards.delete(board.id, 'keep');
    expect(library.boards.list()).toEqual([]);
    expect(library.get(ids[0]!).boardId).toBeNull();
  });

  it('deletes softly with undo, then purges rows and files after the grace period', () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const { library, filesDir } = setup({ now: () => now });
    const a = library.addImage({ png: makePng(), origin: 'local' });
    const b = library.addImage({ png: makePng({ rgb: [1, 2, 3] }), origin: 'local' });
    const { undoToken } = library.delete([a.id, b.id]);
    expect(library.list(q({})).total).toBe(0);
    expect(() => library.get(a.id)).toThrow(/not found/);
    expect(library.undoDelete(undoToken)).toBe(2);
    expect(library.list(q({})).total).toBe(2);
    expect(library.undoDelete(undoToken)).toBe(0);

    library.delete([a.id]);
    expect(library.purgeDeleted(60_000)).toBe(0);
    now = new Date('2026-01-01T00:05:00Z');
    expect(library.purgeDeleted(60_000)).toBe(1);
    expect(readdirSync(filesDir).sort()).toEqual([`${b.id}.png`, `${b.id}.thumb.png`]);
  });

  it('imports PNGs from files and folders, skipping non-PNGs and duplicates', async () => {
    const { library, dir } = setup();
    const src = path.join(dir, 'import');
    mkdirSync(path.join(src, 'nested'), { recursive: true });
    writeFileSync(path.join(src, 'one.png'), pngWithMetadata('imported one'));
    writeFileSync(path.join(src, 'nested', 'two.png'), makePng({ rgb: [0, 0, 0] }));
    writeFileSync(path.join(src, 'fake.png'), 'not a png');
    const r = await library.importPaths([src, path.join(dir, 'missing.png')]);
    expect(r.imported).toBe(2);
    expect(r.skipped.map((s) => s.reason).sort()).toEqual(['not a PNG image', 'not found']);
    expect(library.list(q({ search: 'imported one' })).items[0]?.origin).toBe('imported');
    expect((await library.importPaths([path.join(src, 'one.png')])).skipped[0]?.reason).toBe('already in the library');
  });

  it('keeps a cloud image as its thumbnail until the full PNG arrives, and takes only the right bytes', async () => {
    const { library, filesDir } = setup();
    const png = pngWithMetadata('a far mountain', 3);
    const sha256 = createHash('sha256').update(png).digest('hex');
    const thumb = makePng({ width: 4, height: 4, rgb: [9, 9, 9] });
    const img = await library.addCloudThumb(
      {
        cloudId: 'img_00000000000000000000000001',
        thumb,
        metadata: sampleMetadata('a far mountain', 3),
        sha256,
        size: png.byteLength,
        width: 8,
        height: 8,
      },
      'acct',
    );
    expect(img).toMatchObject({ downloaded: false, origin: 'cloud', width: 8, height: 8 });
    expect(img.thumbUrl).toBe(`http://files/${img.id}.thumb.png`);
    expect(library.list(q({ search: 'mountain' })).items.map((i) => i.id)).toEqual([img.id]);
    // Nothing hands out the file that is not there; without a fetcher, localPath says why.
    expect(() => library.pathOf(img.id)).toThrow(expect.objectContaining({ code: 'IMAGE_NOT_DOWNLOADED' }));
    await expect(library.localPath(img.id)).rejects.toMatchObject({ code: 'IMAGE_NOT_DOWNLOADED' });
    // A restart's repair keeps the row whose PNG is still in the cloud.
    expect(library.repair().removedRows).toBe(0);
    // Wrong bytes are refused and write nothing.
    await expect(library.completeFull(img.id, pngWithMetadata('other', 4))).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
    });
    expect(readdirSync(filesDir)).not.toContain(`${img.id}.png`);
    expect(await library.completeFull(img.id, png)).toBe(true);
    expect(readFileSync(library.pathOf(img.id))).toEqual(png);
    expect(library.get(img.id).downloaded).toBeUndefined();
    expect(await library.completeFull(img.id, png)).toBe(false);
  });

  it('takes full images streamed into its temp files, checks each, and commits those that arrive together', async () => {
    const { library, filesDir, db } = setup();
    const pngs = [1, 2, 3, 4, 5].map((n) => pngWithMetadata(`streamed ${n}`, n));
    const rows = await Promise.all(
      pngs.map((png, n) =>
        library.addCloudThumb(
          {
            cloudId: `img_0000000000000000000000000${n}`,
            thumb: makePng({ width: 4, height: 4 }),
            metadata: sampleMetadata(`streamed ${n}`, n),
            sha256: createHash('sha256').update(png).digest('hex'),
            size: png.byteLength,
            width: 8,
            height: 8,
          },
          'acct',
        ),
      ),
    );
    // What a download does: writes the temp file it is given and says what it wrote.
    const writer = (png: Uint8Array) => async (tmp: string) => {
      writeFileSync(tmp, png, { flag: 'wx' });
      return { size: png.byteLength, sha256: createHash('sha256').update(png).digest('hex') };
    };
    // Bytes that are not this image's: refused, and neither the temp file nor the image stays.
    await expect(library.completeFull(rows[0]!.id, writer(pngs[1]!))).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
    });
    expect(readdirSync(filesDir).filter((f) => !f.includes('.thumb.'))).toEqual([]);
    // All five at once: each lands under its own name and its row says so.
    expect(await Promise.all(rows.map((r, i) => library.completeFull(r.id, writer(pngs[i]!))))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    rows.forEach((r, i) => expect(readFileSync(library.pathOf(r.id))).toEqual(Buffer.from(pngs[i]!)));
    expect(db.prepare('SELECT count(*) AS n FROM images WHERE full_pending = 1').get()).toEqual({ n: 0 });
    expect(readdirSync(filesDir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    // Already here: nothing is fetched again.
    let asked = false;
    expect(
      await library.completeFull(rows[0]!.id, async () => {
        asked = true;
        return { size: 0, sha256: '' };
      }),
    ).toBe(false);
    expect(asked).toBe(false);
  });

  it('gives back the row already recorded when a cloud image arrives twice at once', async () => {
    const { library, filesDir } = setup();
    const input = {
      cloudId: 'img_00000000000000000000000077',
      thumb: makePng({ width: 4, height: 4 }),
      metadata: sampleMetadata('twice', 1),
      sha256: 'a'.repeat(64),
      size: 10,
      width: 8,
      height: 8,
    };
    const [a, b] = await Promise.all([library.addCloudThumb(input, 'acct'), library.addCloudThumb(input, 'acct')]);
    expect(b!.id).toBe(a!.id);
    expect(readdirSync(filesDir)).toEqual([`${a!.id}.thumb.png`]);
  });

  it('repairs orphans both ways at startup', () => {
    const { library, filesDir, db } = setup();
    const a = library.addImage({ png: makePng(), origin: 'local' });
    const b = library.addImage({ png: makePng({ rgb: [9, 9, 9] }), origin: 'local' });
    writeFileSync(path.join(filesDir, '.tmp-deadbeef'), 'partial');
    writeFileSync(path.join(filesDir, 'img_orphan.png'), makePng());
    readdirSync(filesDir); // sanity
    db.prepare('UPDATE images SET file_name = ? WHERE id = ?').run('gone.png', b.id);
    // The temp file, the orphan, and b's image and thumbnail (its row now names another file).
    expect(library.repair()).toEqual({ removedFiles: 4, removedRows: 1 });
    expect(readdirSync(filesDir).sort()).toEqual([`${a.id}.png`, `${a.id}.thumb.png`]);
    expect(library.list(q({})).items.map((i) => i.id)).toEqual([a.id]);
  });

  it('stays consistent when the writing process is killed with SIGKILL mid-write', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-crash-'));
    const child = spawn(process.execPath, [path.join(import.meta.dirname, 'testing/library-writer.ts'), dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const committed: string[] = [];
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.stdout!.setEncoding('utf8');
      let buf = '';
      child.stdout!.on('data', (chunk: string) => {
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const line of lines) if (line.startsWith('committed ')) committed.push(line.slice(10));
        if (committed.length >= 40 && child.exitCode === null) child.kill('SIGKILL');
      });
      child.once('exit', () => resolve());
    });
    expect(child.signalCode).toBe('SIGKILL');

    const filesDir = path.join(dir, 'images');
    const db = openDatabase(path.join(dir, 'library.db'));
    opened.push(db);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const library = createLibrary({ db, filesDir, clock: { now: () => new Date() }, urlFor: (f) => f });
    library.repair();
    const rows = db.prepare('SELECT id, file_name, sha256 FROM images').all() as {
      id: string;
      file_name: string;
      sha256: string;
    }[];
    // Every insert the child reported as committed survived, and nothing else is half there.
    const ids = new Set(rows.map((r) => r.id));
    for (const id of committed) expect(ids.has(id)).toBe(true);
    // Thumbnails are a cache written after the image: one may be missing, never one without its image.
    const onDisk = readdirSync(filesDir);
    expect(onDisk.filter((f) => !f.endsWith('.thumb.png')).sort()).toEqual(rows.map((r) => r.file_name).sort());
    const names = new Set(rows.map((r) => r.file_name.replace(/\.png$/, '.thumb.png')));
    for (const f of onDisk.filter((f) => f.endsWith('.thumb.png'))) expect(names.has(f)).toBe(true);
    for (const r of rows)
      expect(
        createHash('sha256')
          .update(readFileSync(path.join(filesDir, r.file_name)))
          .digest('hex'),
      ).toBe(r.sha256);
  });
});
