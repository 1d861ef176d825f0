/** User settings; switching sync off or on pauses or resumes the gallery sync at once. */
import type { IpcHandlers } from '@atelier/common';
import type { GallerySync } from '../gallery-sync.ts';
import type { SettingsStore } from '../settings.ts';

export interface SettingsHandlersDeps {
  settings: SettingsStore;
  sync: Pick<GallerySync, 'setEnabled'>;
}

export function createSettingsHandlers({
  settings,
  sync,
}: SettingsHandlersDeps): Pick<IpcHandlers, 'settings:get' | 'settings:update'> {
  return {
    'settings:get': async () => settings.get(),
    'settings:update': async (patch) => {
      const next = settings.update(patch);
      if (patch.syncEnabled !== undefined) sync.setEnabled(next.syncEnabled);
      return next;
    },
  };
}
