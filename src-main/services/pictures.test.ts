import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppError } from '@atelier/common';
import { LibraryQuery, MAX_PICTURE_BYTES } from '@atelier/common';
import { decodeInputImage } from '@atelier/engine';
import { openDatabase, type Db } from './db.ts';
import { createPicturesHandlers } from './handlers/pictures.ts';
import { createLibrary } from './library.ts';
import { createPictures } from './pictures.ts';
import { makePng } from './testing/png-fixture.ts';

const opened: Db[] = [];
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
});

function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-pictures-'));
  const filesDir = path.join(dir, 'images');
  mkdirSync(filesDir);
  const db = openDatabase(path.join(dir, 'library.db'));
  opened.push(db);
  const library = createLibrary({ db, filesDir, clock: { now: () => new Date() }, urlFor: (f) => `http://files/${f}` });
  const pictures = createPictures({ library });
  const emitted: unknown[] = [];
  const handlers = createPicturesHandlers({ pictures, emit: (_e, p) => emitted.push(p) });
  const files = () => readdirSync(filesDir).length;
  return { db, library, pictures, handlers, emitted, files };
}
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return (e as AppError).code;
  }
  return 'resolved';
};
/** A white-on-black mask PNG: the left half repainted. */
const maskPng = (width: number, height: number) => {
  const png = makePng({ width, height, rgb: [0, 0, 0] });
  return png;
};

describe('pictures: starting images brought by drop or picker', () => {
  it('a dropped PNG joins the gallery byte for byte; the same bytes again name the same picture', async () => {
    const { handlers, library, emitted } = setup();
    const png = makePng({ width: 24, height: 16, rgb: [10, 200, 30] });
    const img = await handlers['pictures:import']({ name: 'field.png', data: b64(png) });
    expect(img).toMatchObject({ origin: 'imported', width: 24, height: 16 });
    expect(readFileSync(library.pathOf(img.id)).equals(png)).toBe(true);
    expect(library.list(LibraryQuery.parse({})).items.map((i) => i.id)).toEqual([img.id]);
    expect(emitted).toEqual([{ ids: [img.id] }]);
    const again = await handlers['pictures:import']({ name: 'copy.png', data: b64(png) });
    expect(again.id).toBe(img.id);
    expect(library.list(LibraryQuery.parse({})).total).toBe(1);
  });

  it('a JPEG is stored as a PNG of the same pixels', async () => {
    const { pictures, library } = setup();
    const width = 16;
    const height = 8;
    const data = Buffer.alloc(width * height * 4, 0);
    for (let p = 0; p < width * height; p++) data.set([220, 40, 40, 255], p * 4);
    const jpg = jpeg.encode({ data, width, height }, 95).data;
    const img = await pictures.importPicture(new Uint8Array(jpg), 'photo.jpg');
    const stored = readFileSync(library.pathOf(img.id));
    expect(stored.subarray(1, 4).toString('latin1')).toBe('PNG');
    const fromJpeg = decodeInputImage(new Uint8Array(jpg), 'initImage');
    expect(decodeInputImage(new Uint8Array(stored), 'initImage').data).toEqual(fromJpeg.data);
  });

  it('refuses what is not a picture, a damaged picture and an oversized one, and writes nothing', async () => {
    const { pictures, files, library } = setup();
    const gif = new TextEncoder().encode('GIF89a…not a png');
    expect(await codeOf(pictures.importPicture(gif, 'anim.png'))).toBe('INPUT_IMAGE_UNSUPPORTED_TYPE');
    const cut = makePng({ width: 32, height: 32 }).subarray(0, 60);
    expect(await codeOf(pictures.importPicture(new Uint8Array(cut), 'cut.png'))).toBe('INPUT_IMAGE_UNREADABLE');
    const huge = new Uint8Array(MAX_PICTURE_BYTES + 1);
    huge.set(makePng());
    expect(await codeOf(pictures.importPicture(huge, 'huge.png'))).toBe('INPUT_TOO_LARGE');
    // Sides the cloud would refuse are refused here too (a 4 × 4 picture, 5000 wide).
    expect(await codeOf(pictures.importPicture(makePng({ width: 4, height: 4 }), 'tiny.png'))).toBe(
      'INPUT_DIMENSIONS_INVALID',
    );
    expect(await codeOf(pictures.importPicture(makePng({ width: 5000, height: 8 }), 'wide.png'))).toBe(
      'INPUT_DIMENSIONS_INVALID',
    );
    expect(files()).toBe(0);
    expect(library.list(LibraryQuery.parse({})).total).toBe(0);
  });
});

describe('pictures: painted masks', () => {
  it('stores a mask hidden from the gallery, boards and sync, readable by id for the job', async () => {
    const { pictures, handlers, library, db, emitted } = setup();
    const start = await pictures.importPicture(makePng({ width: 24, height: 16 }), 'start.png');
    const board = library.boards.create('Work');
    library.update([start.id], { boardId: board.id });
    emitted.length = 0;
    const png = maskPng(24, 16);
    const mask = await handlers['pictures:saveMask']({ imageId: start.id, png: b64(png) });
    expect(mask).toMatchObject({ width: 24, height: 16 });
    expect(readFileSync(library.pathOf(mask.id)).equals(png)).toBe(true);
    expect(library.get(mask.id).id).toBe(mask.id);
    // Not a gallery picture: not listed, not counted, not uploaded by sync, no gallery reload.
    expect(library.list(LibraryQuery.parse({})).items.map((i) => i.id)).toEqual([start.id]);
    expect(library.boards.list()[0]!.imageCount).toBe(1);
    const role = db.prepare('SELECT role FROM images WHERE id = ?').get(mask.id) as { role: string };
    expect(role.role).toBe('mask');
    expect(emitted).toEqual([]);
    // The same strokes again name the same mask.
    expect((await pictures.saveMask(start.id, png)).id).toBe(mask.id);
    // A dropped picture with the mask's bytes is a picture of its own, not the hidden mask.
    const asPicture = await pictures.importPicture(png, 'mask-as-picture.png');
    expect(asPicture.id).not.toBe(mask.id);
  });

  it('refuses a mask of another size, a non-PNG mask and a mask for a picture not in the library, writing nothing', async () => {
    const { pictures, files } = setup();
    const start = await pictures.importPicture(makePng({ width: 24, height: 16 }), 'start.png');
    const before = files();
    await expect(pictures.saveMask(start.id, maskPng(16, 24))).rejects.toMatchObject({
      code: 'INPUT_IMAGE_SIZE_MISMATCH',
      userMessage: expect.stringContaining('16×24') as unknown,
    });
    const jpg = jpeg.encode({ data: Buffer.alloc(24 * 16 * 4, 255), width: 24, height: 16 }, 90).data;
    expect(await codeOf(pictures.saveMask(start.id, new Uint8Array(jpg)))).toBe('INPUT_IMAGE_UNSUPPORTED_TYPE');
    expect(await codeOf(pictures.saveMask('img_00000000000000000000NOPE', maskPng(24, 16)))).toBe(
      'INPUT_IMAGE_NOT_FOUND',
    );
    expect(files()).toBe(before);
  });
});
