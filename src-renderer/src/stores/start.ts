/**
 * The picture a run starts from and the mask painted over it (issue 15). The mask lives here, as
 * pixels of the starting image, until a run needs it: then it is saved once (pictures:saveMask)
 * and named by id, and the same strokes keep that id until they change.
 */
import {
  AppError,
  DEFAULT_STRENGTH,
  MAX_PICTURE_BYTES,
  type GenerateRequestInput,
  type ImageMetadata,
  type LibraryImage,
} from '@atelier/common';
import { createStore } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';
import { userMessageOf } from '../lib/field-errors.ts';
import { MaskBitmap, defaultBrushSize, maxBrushSize, toBase64, type MaskTool, type Point } from '../lib/mask.ts';

export interface StartPicture {
  id: string;
  url: string;
  width: number;
  height: number;
}

/** Reads a stored picture's pixels (RGBA) from its URL: the browser's decoder in the app, a double in tests. */
export type LoadPixels = (url: string) => Promise<{ width: number; height: number; data: ArrayLike<number> }>;

/** What a dropped or picked file offers (a DOM File has all of it). */
export interface PictureFile {
  name: string;
  size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface StartState {
  picture: StartPicture | null;
  /** 0–1: how much of the schedule runs from the picture. */
  strength: number;
  mask: MaskBitmap | null;
  /** The stored mask whose pixels the editor shows; null once a stroke changes them. */
  maskRef: string | null;
  /** Bumped on every change of the mask's pixels (the bitmap itself is edited in place). */
  rev: number;
  tool: MaskTool;
  /** Unit: pixels of the starting image (the brush's diameter). */
  brushSize: number;
  /** Whether the mask editor is open over the picture. */
  editing: boolean;
  /** A file is being read or imported. */
  busy: boolean;
  /** Why the last drop, pick or restore failed; the picture already chosen stays. */
  error: string | null;
  use(image: Pick<LibraryImage, 'id' | 'url' | 'width' | 'height'>): void;
  remove(): void;
  importFile(file: PictureFile): Promise<boolean>;
  setStrength(strength: number): void;
  setEditing(editing: boolean): void;
  setTool(tool: MaskTool): void;
  setBrushSize(size: number): void;
  /** `[` and `]`: a step is about a tenth of the size, at least one pixel. */
  stepBrush(direction: 1 | -1): void;
  strokeBegin(at: Point): void;
  strokeMove(at: Point): void;
  strokeEnd(): void;
  clear(): void;
  invert(): void;
  undo(): void;
  redo(): void;
  /** Reuse settings: the picture, mask and strength an image was made from, when they are still here. */
  restore(meta: Pick<ImageMetadata, 'init_image' | 'init_mask' | 'strength'>): Promise<void>;
  /** The request fields for the current picture and mask; saves the mask first when it changed. */
  requestFields(): Promise<Pick<GenerateRequestInput, 'initImage' | 'mask' | 'strength'>>;
}

const ACCEPTED = /\.(png|jpe?g)$/i;

export function createStartStore(api: Api, loadPixels: LoadPixels) {
  return createStore<StartState>()((set, get) => {
    const changed = () => set({ rev: get().rev + 1, maskRef: null });
    const withMask = (f: (m: MaskBitmap) => boolean | void) => {
      const { mask } = get();
      if (mask && f(mask) !== false) changed();
    };
    const mb = (n: number) => `${Math.round(n / 1024 / 102.4) / 10} MB`;
    return {
      picture: null,
      strength: DEFAULT_STRENGTH,
      mask: null,
      maskRef: null,
      rev: 0,
      tool: 'brush',
      brushSize: 8,
      editing: false,
      busy: false,
      error: null,
      use(image) {
        const same = get().picture?.id === image.id;
        set({
          picture: { id: image.id, url: image.url, width: image.width, height: image.height },
          error: null,
          ...(same
            ? {}
            : {
                mask: new MaskBitmap(image.width, image.height),
                maskRef: null,
                rev: get().rev + 1,
                brushSize: defaultBrushSize(image.width, image.height),
              }),
        });
      },
      remove: () => set({ picture: null, mask: null, maskRef: null, editing: false, error: null, rev: get().rev + 1 }),
      async importFile(file) {
        // Said before any byte is read; the main process checks again by the bytes themselves.
        if (!ACCEPTED.test(file.name)) {
          set({ error: `${file.name} is not a PNG or JPEG picture. Drop a .png or .jpg file.` });
          return false;
        }
        if (file.size > MAX_PICTURE_BYTES) {
          set({ error: `${file.name} is ${mb(file.size)}; pictures up to ${mb(MAX_PICTURE_BYTES)} can be used.` });
          return false;
        }
        set({ busy: true, error: null });
        try {
          const data = toBase64(new Uint8Array(await file.arrayBuffer()));
          get().use(await api.invoke('pictures:import', { name: file.name, data }));
          return true;
        } catch (e) {
          set({ error: e instanceof AppError ? e.userMessage : `${file.name} could not be read.` });
          return false;
        } finally {
          set({ busy: false });
        }
      },
      setStrength: (strength) => set({ strength: Math.min(1, Math.max(0, Math.round(strength * 100) / 100)) }),
      setEditing: (editing) => set({ editing: editing && get().picture !== null }),
      setTool: (tool) => set({ tool }),
      setBrushSize(size) {
        const p = get().picture;
        const max = p ? maxBrushSize(p.width, p.height) : 256;
        set({ brushSize: Math.min(max, Math.max(1, Math.round(size))) });
      },
      stepBrush(direction) {
        const size = get().brushSize;
        get().setBrushSize(size + direction * Math.max(1, Math.round(size / 10)));
      },
      strokeBegin: (at) => withMask((m) => m.begin(get().tool, get().brushSize, at)),
      strokeMove: (at) => withMask((m) => (m.stroking ? m.moveTo(at) : false)),
      strokeEnd: () => get().mask?.end(),
      clear: () => withMask((m) => (m.isEmpty() ? false : m.clear())),
      invert: () => withMask((m) => m.invert()),
      undo: () => withMask((m) => m.undo()),
      redo: () => withMask((m) => m.redo()),
      async restore(meta) {
        if (!meta.init_image) {
          get().remove();
          return;
        }
        set({ error: null });
        let picture: LibraryImage;
        try {
          picture = await api.invoke('library:get', { id: meta.init_image });
        } catch {
          get().remove();
          set({
            error: 'The starting image of that picture is not in your library any more, so the run starts from text.',
          });
          return;
        }
        if (picture.downloaded === false) {
          // Synced down with its thumbnail only: the full picture is fetched before it is used.
          try {
            picture = await api.invoke('library:download', { id: picture.id });
          } catch (e) {
            get().remove();
            set({ error: `The starting image of that picture is still in the cloud. ${userMessageOf(e)}` });
            return;
          }
        }
        get().use(picture);
        get().setStrength(meta.strength ?? DEFAULT_STRENGTH);
        if (!meta.init_mask) {
          // Image to image: strokes painted earlier on the same picture are not part of it.
          set({ mask: new MaskBitmap(picture.width, picture.height), maskRef: null, rev: get().rev + 1 });
          return;
        }
        try {
          const stored = await api.invoke('library:get', { id: meta.init_mask });
          const px = await loadPixels(stored.url);
          if (px.width !== picture.width || px.height !== picture.height) throw new Error('size');
          set({ mask: MaskBitmap.fromRgba(px.width, px.height, px.data), maskRef: stored.id, rev: get().rev + 1 });
        } catch {
          set({ error: 'The mask of that picture could not be found; paint it again to repaint a region.' });
        }
      },
      async requestFields() {
        const { picture, mask, maskRef, strength } = get();
        if (!picture) return {};
        const fields = { initImage: picture.id, strength };
        if (!mask || mask.isEmpty()) return fields;
        if (maskRef) return { ...fields, mask: maskRef };
        const rev = get().rev;
        const saved = await api.invoke('pictures:saveMask', { imageId: picture.id, png: toBase64(mask.toPng()) });
        // Strokes made while it saved belong to a newer mask: keep that one unsaved.
        if (get().rev === rev) set({ maskRef: saved.id });
        return { ...fields, mask: saved.id };
      },
    };
  });
}
export type StartStore = ReturnType<typeof createStartStore>;

/**
 * The browser's own decoder: the stored PNG loaded as an <img> (img-src 'self' in both shells, so
 * the canvas is not tainted) and read back from a canvas at its own size.
 */
export const browserPixels: LoadPixels = async (url) => {
  const img = new Image();
  img.src = url;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const g = canvas.getContext('2d');
  if (!g) throw new Error('no 2d context');
  g.drawImage(img, 0, 0);
  return { width: canvas.width, height: canvas.height, data: g.getImageData(0, 0, canvas.width, canvas.height).data };
};
