/** The gallery's channels: every local edit is also queued for the cloud (gallery sync). */
import type { IpcHandlers } from '@atelier/common';
import type { Emit } from '../event-bus.ts';
import type { GallerySync } from '../gallery-sync.ts';
import type { Library } from '../library.ts';

export interface LibraryHandlersDeps {
  library: Library;
  sync: Pick<GallerySync, 'recordEdit'>;
  emit: Emit;
  /** Shows a file in the OS file manager (Electron). */
  revealFile?: ((file: string) => void) | undefined;
}

type LibraryChannels =
  | 'library:list'
  | 'library:get'
  | 'library:update'
  | 'library:delete'
  | 'library:undoDelete'
  | 'library:import'
  | 'library:reveal'
  | 'library:download';

export function createLibraryHandlers({
  library,
  sync,
  emit,
  revealFile,
}: LibraryHandlersDeps): Pick<IpcHandlers, LibraryChannels> {
  return {
    'library:list': async (q) => library.list(q),
    'library:get': async ({ id }) => library.get(id),
    'library:update': async ({ ids, starred, boardId }) => {
      library.update(ids, {
        ...(starred !== undefined ? { starred } : {}),
        ...(boardId !== undefined ? { boardId } : {}),
      });
      for (const id of ids) {
        if (starred !== undefined) sync.recordEdit('image', id, 'starred', starred);
        if (boardId !== undefined) sync.recordEdit('image', id, 'boardId', boardId);
      }
      emit('library:changed', { ids });
      return { ok: true as const };
    },
    'library:delete': async ({ ids }) => {
      const r = library.delete(ids);
      for (const id of ids) sync.recordEdit('image', id, 'deleted', true);
      emit('library:changed', { ids });
      return r;
    },
    'library:undoDelete': async ({ undoToken }) => {
      const ids = library.idsByUndoToken(undoToken);
      const restored = library.undoDelete(undoToken);
      for (const id of ids) sync.recordEdit('image', id, 'deleted', false);
      emit('library:changed', { ids: [] });
      return { restored };
    },
    'library:import': async ({ paths }) => {
      const r = await library.importPaths(paths);
      if (r.ids.length) emit('library:changed', { ids: r.ids });
      return { imported: r.imported, skipped: r.skipped };
    },
    'library:reveal': async ({ id }) => {
      // An image still in the cloud is downloaded first: the file manager gets a file that exists.
      const file = await library.localPath(id);
      revealFile?.(file);
      return { path: file };
    },
    'library:download': async ({ id }) => {
      await library.localPath(id);
      return library.get(id);
    },
  };
}
