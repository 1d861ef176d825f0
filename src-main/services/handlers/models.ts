/** Installed models, imports, downloads and the catalogue of real models to install. */
import { AppError, type IpcHandlers } from '@atelier/common';
import type { Emit } from '../event-bus.ts';
import type { CatalogueModelStore } from '../route-facts.ts';

export interface ModelsHandlersDeps {
  models: CatalogueModelStore;
  emit: Emit;
}

type ModelsChannels =
  | 'models:list'
  | 'models:import'
  | 'models:download'
  | 'models:catalogue'
  | 'models:install'
  | 'models:cancelDownload'
  | 'models:remove';

const NO_CATALOGUE = 'This build cannot download models from the catalogue. Import a model folder instead.';

export function createModelsHandlers({ models, emit }: ModelsHandlersDeps): Pick<IpcHandlers, ModelsChannels> {
  const ok = { ok: true as const };
  return {
    'models:list': async () => ({ items: await models.list(), downloads: models.downloads() }),
    'models:import': ({ path, mode }) => models.import(path, mode),
    'models:download': (input) => models.download(input, (d) => emit('models:progressed', d)),
    'models:catalogue': async () => {
      const list = models.catalogue;
      if (!list)
        throw new AppError('SERVICE_UNAVAILABLE', 'this model store has no catalogue', { userMessage: NO_CATALOGUE });
      return { items: await list.call(models) };
    },
    'models:install': async ({ id }) => {
      const install = models.install;
      if (!install)
        throw new AppError('SERVICE_UNAVAILABLE', 'this model store cannot install catalogue models', {
          userMessage: NO_CATALOGUE,
        });
      return install.call(models, id, (d) => emit('models:progressed', d));
    },
    'models:cancelDownload': async ({ id }) => {
      await models.cancelDownload(id);
      return ok;
    },
    'models:remove': async ({ id }) => {
      await models.remove(id);
      return ok;
    },
  };
}
