import type { LibraryImage } from '@atelier/common';
import { createStore } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';
import { emptySelection, pruneSelection, select, selectAll, type Selection } from '../lib/selection.ts';

export interface Board {
  id: string;
  name: string;
  imageCount: number;
}

export interface GalleryFilter {
  /** null: all images; 'none': images on no board. */
  boardId: string | null;
  starred: boolean;
  search: string;
}

export interface GalleryState {
  filter: GalleryFilter;
  items: LibraryImage[];
  nextCursor: string | null;
  total: number;
  loading: boolean;
  loaded: boolean;
  boards: Board[];
  selection: Selection;
  /** The image open in the viewer. */
  viewerId: string | null;
  setFilter(patch: Partial<GalleryFilter>): void;
  refresh(): Promise<void>;
  loadMore(): Promise<void>;
  loadBoards(): Promise<void>;
  click(id: string, mods: { shift?: boolean; toggle?: boolean }): void;
  selectAll(): void;
  clearSelection(): void;
  open(id: string | null): void;
  step(delta: number): void;
  setStar(ids: string[], starred: boolean): Promise<void>;
  moveToBoard(ids: string[], boardId: string | null): Promise<void>;
  remove(ids: string[]): Promise<string>;
  undoRemove(token: string): Promise<number>;
  createBoard(name: string): Promise<void>;
  renameBoard(id: string, name: string): Promise<void>;
  deleteBoard(id: string, images: 'keep' | 'delete'): Promise<void>;
}

export const PAGE_SIZE = 100;

export function createGalleryStore(api: Api, onError: (e: unknown) => void) {
  let loadSeq = 0;
  const query = (f: GalleryFilter) => ({
    ...(f.boardId ? { boardId: f.boardId } : {}),
    ...(f.starred ? { starred: true } : {}),
    ...(f.search.trim() ? { search: f.search.trim() } : {}),
  });
  return createStore<GalleryState>()((set, get) => ({
    filter: { boardId: null, starred: false, search: '' },
    items: [],
    nextCursor: null,
    total: 0,
    loading: false,
    loaded: false,
    boards: [],
    selection: emptySelection,
    viewerId: null,
    setFilter(patch) {
      set({ filter: { ...get().filter, ...patch }, selection: emptySelection });
      void get().refresh();
    },
    /** Reloads from the top, keeping as many items as are loaded now so the scroll position survives. */
    async refresh() {
      const seq = ++loadSeq;
      set({ loading: true });
      try {
        const limit = Math.min(500, Math.max(PAGE_SIZE, get().items.length));
        const page = await api.invoke('library:list', { ...query(get().filter), limit });
        if (seq !== loadSeq) return;
        const order = page.items.map((i) => i.id);
        set({
          items: page.items,
          nextCursor: page.nextCursor,
          total: page.total,
          loaded: true,
          selection: pruneSelection(get().selection, order),
        });
      } catch (e) {
        if (seq === loadSeq) onError(e);
      } finally {
        if (seq === loadSeq) set({ loading: false });
      }
    },
    async loadMore() {
      const { nextCursor, loading } = get();
      if (!nextCursor || loading) return;
      const seq = ++loadSeq;
      set({ loading: true });
      try {
        const page = await api.invoke('library:list', { ...query(get().filter), cursor: nextCursor, limit: PAGE_SIZE });
        if (seq !== loadSeq) return;
        const seen = new Set(get().items.map((i) => i.id));
        set({
          items: [...get().items, ...page.items.filter((i) => !seen.has(i.id))],
          nextCursor: page.nextCursor,
          total: page.total,
        });
      } catch (e) {
        if (seq === loadSeq) onError(e);
      } finally {
        if (seq === loadSeq) set({ loading: false });
      }
    },
    async loadBoards() {
      try {
        const { items } = await api.invoke('boards:list', {});
        set({ boards: items });
      } catch (e) {
        onError(e);
      }
    },
    click(id, mods) {
      set({
        selection: select(
          get().selection,
          get().items.map((i) => i.id),
          id,
          mods,
        ),
      });
    },
    selectAll: () => set({ selection: selectAll(get().items.map((i) => i.id)) }),
    clearSelection: () => set({ selection: emptySelection }),
    open: (viewerId) => set({ viewerId }),
    step(delta) {
      const { items, viewerId } = get();
      const i = items.findIndex((x) => x.id === viewerId);
      if (i < 0) return;
      const next = items[i + delta];
      if (next) set({ viewerId: next.id, selection: { ids: new Set([next.id]), anchor: next.id } });
      // Reaching the end of what is loaded pulls the next page, so arrows walk the whole library.
      if (i + delta >= items.length - 3) void get().loadMore();
    },
    async setStar(ids, starred) {
      const before = get().items;
      set({ items: before.map((i) => (ids.includes(i.id) ? { ...i, starred } : i)) });
      try {
        await api.invoke('library:update', { ids, starred });
      } catch (e) {
        set({ items: before });
        onError(e);
      }
    },
    async moveToBoard(ids, boardId) {
      await api.invoke('library:update', { ids, boardId });
      await Promise.all([get().refresh(), get().loadBoards()]);
    },
    async remove(ids) {
      const { undoToken } = await api.invoke('library:delete', { ids });
      const gone = new Set(ids);
      set({
        items: get().items.filter((i) => !gone.has(i.id)),
        total: Math.max(0, get().total - ids.length),
        selection: emptySelection,
        viewerId: get().viewerId && gone.has(get().viewerId!) ? null : get().viewerId,
      });
      void get().loadBoards();
      return undoToken;
    },
    async undoRemove(token) {
      const { restored } = await api.invoke('library:undoDelete', { undoToken: token });
      await Promise.all([get().refresh(), get().loadBoards()]);
      return restored;
    },
    async createBoard(name) {
      await api.invoke('boards:create', { name });
      await get().loadBoards();
    },
    async renameBoard(id, name) {
      await api.invoke('boards:rename', { id, name });
      await get().loadBoards();
    },
    async deleteBoard(id, images) {
      await api.invoke('boards:delete', { id, images });
      if (get().filter.boardId === id) get().setFilter({ boardId: null });
      else void get().refresh();
      await get().loadBoards();
    },
  }));
}
export type GalleryStore = ReturnType<typeof createGalleryStore>;
