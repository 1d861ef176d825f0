import { AppError, type LibraryImage } from '@atelier/common';
import { describe, expect, it } from 'vitest';
import { InMemoryApi } from '../testing/in-memory-api.ts';
import { createGenerateStore } from './generate.ts';
import { createStartStore } from './start.ts';

const id = (p: string, n: number) => `${p}_${String(n).padStart(22, '0')}`;
const picture = (n: number, over: Partial<LibraryImage> = {}): LibraryImage => ({
  id: id('img', n),
  boardId: null,
  starred: false,
  origin: 'local',
  width: 16,
  height: 8,
  metadata: null,
  url: `u${n}`,
  thumbUrl: `t${n}`,
  createdAt: '2026-01-01T00:00:00Z',
  ...over,
});
const noPixels = () => Promise.reject(new Error('no pixels in this test'));
const file = (name: string, bytes: number[] = [0x89, 0x50, 0x4e, 0x47], size = bytes.length) => ({
  name,
  size,
  arrayBuffer: async () => Uint8Array.from(bytes).buffer,
});
const decision = {
  target: 'local' as const,
  provider: 'cpu',
  reason: 'r',
  warning: null,
  cost: null,
  blocked: null,
  action: null,
  askCloud: false,
  memory: null,
};

describe('start store: the picture a run starts from and its mask', () => {
  it('a dropped file is imported once by its bytes; a wrong kind or size is said before any byte is read', async () => {
    const api = new InMemoryApi().handle('pictures:import', ({ name }) => picture(1, { id: id('img', name.length) }));
    const s = createStartStore(api, noPixels);
    expect(await s.getState().importFile(file('notes.txt'))).toBe(false);
    expect(s.getState().error).toMatch(/not a PNG or JPEG/);
    expect(await s.getState().importFile(file('huge.png', [1], 30 * 1024 * 1024))).toBe(false);
    expect(s.getState().error).toMatch(/up to 20 MB/);
    expect(api.callsTo('pictures:import')).toHaveLength(0);
    expect(await s.getState().importFile(file('cat.png'))).toBe(true);
    expect(api.callsTo('pictures:import')).toEqual([{ name: 'cat.png', data: btoa('\x89PNG') }]);
    expect(s.getState()).toMatchObject({ picture: { id: id('img', 7), width: 16, height: 8 }, error: null });
    expect(s.getState().mask?.width).toBe(16);
  });

  it('a refused import keeps the picture already chosen and says why', async () => {
    const api = new InMemoryApi().handle('pictures:import', () => {
      throw new AppError('INPUT_IMAGE_UNREADABLE', 'bad', { userMessage: 'The starting image could not be read.' });
    });
    const s = createStartStore(api, noPixels);
    s.getState().use(picture(1));
    expect(await s.getState().importFile(file('broken.jpg'))).toBe(false);
    expect(s.getState()).toMatchObject({
      picture: { id: id('img', 1) },
      error: 'The starting image could not be read.',
    });
  });

  it('the mask is saved once per set of strokes and named by id in the request', async () => {
    let saves = 0;
    const api = new InMemoryApi().handle('pictures:saveMask', () => picture(100 + ++saves));
    const s = createStartStore(api, noPixels);
    s.getState().use(picture(1));
    s.getState().setStrength(0.6);
    expect(await s.getState().requestFields()).toEqual({ initImage: id('img', 1), strength: 0.6 });
    s.getState().strokeBegin({ x: 2, y: 2 });
    s.getState().strokeMove({ x: 10, y: 2 });
    s.getState().strokeEnd();
    const first = await s.getState().requestFields();
    expect(first).toEqual({ initImage: id('img', 1), strength: 0.6, mask: id('img', 101) });
    expect(await s.getState().requestFields()).toEqual(first);
    expect(saves).toBe(1);
    const [call] = api.callsTo('pictures:saveMask') as { imageId: string; png: string }[];
    expect(call!.imageId).toBe(id('img', 1));
    // The PNG is the picture's size: width and height from its IHDR.
    const png = Uint8Array.from(atob(call!.png), (c) => c.charCodeAt(0));
    const dv = new DataView(png.buffer);
    expect([dv.getUint32(16), dv.getUint32(20)]).toEqual([16, 8]);
    s.getState().invert();
    expect((await s.getState().requestFields()).mask).toBe(id('img', 102));
    s.getState().clear();
    expect(await s.getState().requestFields()).toEqual({ initImage: id('img', 1), strength: 0.6 });
  });

  it('undo, redo and the brush keys change the mask and the size within the picture', () => {
    const s = createStartStore(new InMemoryApi(), noPixels);
    s.getState().use(picture(1, { width: 64, height: 64 }));
    expect(s.getState().brushSize).toBe(8);
    s.getState().stepBrush(1);
    expect(s.getState().brushSize).toBe(9);
    s.getState().setBrushSize(1000);
    expect(s.getState().brushSize).toBe(32);
    s.getState().strokeBegin({ x: 32, y: 32 });
    s.getState().strokeEnd();
    expect(s.getState().mask!.isEmpty()).toBe(false);
    s.getState().undo();
    expect(s.getState().mask!.isEmpty()).toBe(true);
    s.getState().redo();
    expect(s.getState().mask!.isEmpty()).toBe(false);
    s.getState().remove();
    expect(s.getState()).toMatchObject({ picture: null, mask: null, editing: false });
  });

  it('Reuse settings brings back the picture, its mask pixels and the strength; a picture gone says so', async () => {
    const api = new InMemoryApi().handle('library:get', ({ id: wanted }) => {
      if (wanted === id('img', 9)) throw new AppError('NOT_FOUND', 'gone');
      return wanted === id('img', 2)
        ? picture(2, { url: 'mask-url', width: 2, height: 1 })
        : picture(1, { width: 2, height: 1 });
    });
    const loads: string[] = [];
    const s = createStartStore(api, async (url) => {
      loads.push(url);
      return { width: 2, height: 1, data: [255, 255, 255, 255, 0, 0, 0, 255] };
    });
    await s.getState().restore({ init_image: id('img', 1), init_mask: id('img', 2), strength: 0.4 });
    expect(loads).toEqual(['mask-url']);
    expect(s.getState()).toMatchObject({ picture: { id: id('img', 1) }, strength: 0.4, maskRef: id('img', 2) });
    expect(Array.from(s.getState().mask!.data)).toEqual([255, 0]);
    expect(await s.getState().requestFields()).toEqual({ initImage: id('img', 1), strength: 0.4, mask: id('img', 2) });
    // An image-to-image result of the same picture: the mask goes, the picture stays.
    await s.getState().restore({ init_image: id('img', 1), strength: 0.3 });
    expect(s.getState().mask!.isEmpty()).toBe(true);
    expect(await s.getState().requestFields()).toEqual({ initImage: id('img', 1), strength: 0.3 });
    await s.getState().restore({ init_image: id('img', 9) });
    expect(s.getState().picture).toBeNull();
    expect(s.getState().error).toMatch(/not in your library/);
    await s.getState().restore({});
    expect(s.getState()).toMatchObject({ picture: null, error: null });
  });

  it('Reuse settings downloads a starting picture that is still in the cloud first, or says it could not', async () => {
    let online = true;
    const api = new InMemoryApi()
      .handle('library:get', ({ id: i }) => picture(Number(i.slice(-2)), { id: i, downloaded: false }))
      .handle('library:download', ({ id: i }) => {
        if (!online)
          throw new AppError('IMAGE_NOT_DOWNLOADED', 'offline', {
            userMessage: 'You are offline, so the full image cannot be downloaded.',
          });
        return picture(Number(i.slice(-2)), { id: i, url: 'full.png' });
      });
    const s = createStartStore(api, noPixels);
    await s.getState().restore({ init_image: id('img', 1), strength: 0.3 });
    expect(api.callsTo('library:download')).toEqual([{ id: id('img', 1) }]);
    expect(s.getState()).toMatchObject({ picture: { id: id('img', 1), url: 'full.png' }, error: null });
    online = false;
    await s.getState().restore({ init_image: id('img', 2), strength: 0.3 });
    expect(s.getState().picture).toBeNull();
    expect(s.getState().error).toBe(
      'The starting image of that picture is still in the cloud. You are offline, so the full image cannot be downloaded.',
    );
  });

  it('Generate sends the picture, mask and strength; a refused mask loses neither the form nor the strokes', async () => {
    let refuse = true;
    const api = new InMemoryApi()
      .handle('router:explain', () => decision)
      .handle('pictures:saveMask', () => {
        if (refuse)
          throw new AppError('INPUT_IMAGE_SIZE_MISMATCH', 'size', {
            userMessage: 'The mask is 8×8 but the starting image is 16×8.',
          });
        return picture(50);
      })
      .handle('jobs:submit', () => ({ jobs: [], decision }));
    const errors: unknown[] = [];
    const start = createStartStore(api, noPixels);
    const g = createGenerateStore(api, (e) => errors.push(e), undefined, start);
    g.getState().update({ prompt: 'a door', steps: '4' });
    start.getState().use(picture(1));
    start.getState().strokeBegin({ x: 1, y: 1 });
    start.getState().strokeEnd();
    expect(await g.getState().submit()).toBeNull();
    expect((errors[0] as AppError).code).toBe('INPUT_IMAGE_SIZE_MISMATCH');
    expect(g.getState().form.prompt).toBe('a door');
    expect(start.getState().mask!.isEmpty()).toBe(false);
    expect(api.callsTo('jobs:submit')).toHaveLength(0);
    refuse = false;
    await g.getState().submit();
    expect(api.callsTo('jobs:submit')[0]).toMatchObject({
      prompt: 'a door',
      initImage: id('img', 1),
      mask: id('img', 50),
      strength: 0.75,
    });
    await g.getState().explain();
    expect(api.callsTo('router:explain').at(-1)).toMatchObject({ initImage: id('img', 1) });
  });
});
