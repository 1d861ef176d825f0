/** Starting images and masks (issue 15): pictures dropped or picked in Generate, masks painted over them. */
import type { IpcHandlers } from '@atelier/common';
import type { Emit } from '../event-bus.ts';
import type { Pictures } from '../pictures.ts';

export interface PicturesHandlersDeps {
  pictures: Pictures;
  emit: Emit;
}

type PicturesChannels = 'pictures:import' | 'pictures:saveMask';

const bytesOf = (base64: string) => new Uint8Array(Buffer.from(base64, 'base64'));

export function createPicturesHandlers({ pictures, emit }: PicturesHandlersDeps): Pick<IpcHandlers, PicturesChannels> {
  return {
    'pictures:import': async ({ name, data }) => {
      const image = await pictures.importPicture(bytesOf(data), name);
      emit('library:changed', { ids: [image.id] });
      return image;
    },
    // A mask is not a gallery picture: nothing for the gallery to reload.
    'pictures:saveMask': async ({ imageId, png }) => pictures.saveMask(imageId, bytesOf(png)),
  };
}
