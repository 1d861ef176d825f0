/** Board channels: every change is also queued for the cloud (gallery sync). */
import type { IpcHandlers } from '@atelier/common';
import type { Emit } from '../event-bus.ts';
import type { GallerySync } from '../gallery-sync.ts';
import type { Library } from '../library.ts';

export interface BoardsHandlersDeps {
  library: Library;
  sync: Pick<GallerySync, 'recordEdit'>;
  emit: Emit;
}

type BoardsChannels = 'boards:list' | 'boards:create' | 'boards:rename' | 'boards:delete';

export function createBoardsHandlers({ library, sync, emit }: BoardsHandlersDeps): Pick<IpcHandlers, BoardsChannels> {
  return {
    'boards:list': async () => ({ items: library.boards.list() }),
    'boards:create': async ({ name }) => {
      const b = library.boards.create(name);
      sync.recordEdit('board', b.id, 'create', name);
      return b;
    },
    'boards:rename': async ({ id, name }) => {
      const b = library.boards.rename(id, name);
      sync.recordEdit('board', id, 'name', name);
      return b;
    },
    'boards:delete': async ({ id, images }) => {
      const onBoard = images === 'delete' ? library.boards.imageIds(id) : [];
      library.boards.delete(id, images);
      sync.recordEdit('board', id, 'boardDeleted', true);
      for (const imageId of onBoard) sync.recordEdit('image', imageId, 'deleted', true);
      emit('library:changed', { ids: [] });
      return { ok: true as const };
    },
  };
}
