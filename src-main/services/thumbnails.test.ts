import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { decodePng } from '@atelier/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { LibraryQuery } from '@atelier/common';
import { openDatabase, type Db } from './db.ts';
import { createLibrary } from './library.ts';
import { chunk, makePng } from './testing/png-fixture.ts';
import { makeThumbnail, MAX_DECODE_PIXELS } from './thumbnails.ts';

/** A PNG whose header says `width`×`height` RGB with `idat` as its (already compressed) data. */
function pngOf(width: number, height: number, idat: Buffer, colourType = 2): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = colourType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('thumbnails', () => {
  it('are a real, smaller PNG with the picture’s aspect and colour', () => {
    const thumb = makeThumbnail(makePng({ width: 512, height: 384, rgb: [10, 200, 30] }))!;
    const d = decodePng(thumb);
    expect([d.width, d.height]).toEqual([256, 192]);
    expect([...d.data.subarray(0, 3)]).toEqual([10, 200, 30]);
  });

  it('refuse to decode a PNG that declares too many pixels (no allocation of its size)', () => {
    const side = Math.ceil(Math.sqrt(MAX_DECODE_PIXELS)) + 1;
    expect(makeThumbnail(pngOf(side, side, deflateSync(Buffer.alloc(10))))).toBeNull();
    expect(makeThumbnail(pngOf(65535, 65535, deflateSync(Buffer.alloc(10))))).toBeNull();
  });

  it('a zlib bomb yields no thumbnail (inflating stops at what the declared size needs)', () => {
    // 100×100 declared, 64 MB of zeros inside: refused, not inflated.
    const bomb = pngOf(100, 100, deflateSync(Buffer.alloc(64 * 1024 * 1024)));
    expect(bomb.byteLength).toBeLessThan(200 * 1024);
    expect(makeThumbnail(bomb)).toBeNull();
  });

  it('yield nothing (not an error) for PNGs the decoder does not read, and for non-PNGs', () => {
    expect(makeThumbnail(pngOf(4, 4, deflateSync(Buffer.alloc(4 * 5)), 3))).toBeNull(); // palette
    expect(makeThumbnail(Buffer.from('not a png at all, just some text'))).toBeNull();
  });
});

describe('library thumbnails', () => {
  const opened: Db[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const db of opened.splice(0)) db.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  function setup() {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-thumbs-'));
    dirs.push(dir);
    mkdirSync(path.join(dir, 'images'));
    const db = openDatabase(path.join(dir, 'library.db'));
    opened.push(db);
    const filesDir = path.join(dir, 'images');
    return {
      db,
      filesDir,
      library: createLibrary({ db, filesDir, clock: { now: () => new Date() }, urlFor: (f) => f }),
    };
  }

  it('the grid gets the thumbnail; an image that has none shows itself, and gets one made once', () => {
    const { library, filesDir } = setup();
    const img = library.addImage({ png: makePng({ width: 300, height: 300 }), origin: 'local' });
    expect(img.thumbUrl).toBe(`${img.id}.thumb.png`);
    rmSync(path.join(filesDir, `${img.id}.thumb.png`));
    expect(library.list(LibraryQuery.parse({})).items[0]!.thumbUrl).toBe(`${img.id}.png`);
    const made = library.thumbnail(img.id)!;
    expect(decodePng(made).width).toBe(256);
    expect(library.list(LibraryQuery.parse({})).items[0]!.thumbUrl).toBe(`${img.id}.thumb.png`);
  });

  it('a thumbnail that came with a download is kept as it is', () => {
    const { library } = setup();
    const thumb = makePng({ width: 16, height: 16, rgb: [1, 2, 3] });
    const img = library.addImage({
      png: makePng({ width: 300, height: 300 }),
      origin: 'cloud',
      cloudId: 'img_x',
      thumb,
    });
    expect(Buffer.from(library.thumbnail(img.id)!)).toEqual(thumb);
  });
});
