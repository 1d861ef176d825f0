/**
 * The engine process entry: run it as a worker_threads Worker (Node, the CLI, the cloud worker)
 * or as Electron's utilityProcess (the desktop). It serves the host protocol on whichever parent
 * port it finds; the protocol and the engine code are the same in both.
 */
import { providerEnvironment } from '../providers/config.ts';
import { detectProviders } from '../providers/detect.ts';
import { serveEngine, type ServiceModel } from './engine-service.ts';
import { openModel } from './open-model.ts';
import { parentEndpoint } from './parent-endpoint.ts';

// Lenient: a bad ATELIER_THREADS is the caller's to report; detection only needs the library paths.
const env = providerEnvironment(undefined, false);
serveEngine(parentEndpoint(), {
  openModel: async (dir, session, known) => {
    const { model, cachedSessions } = await openModel(dir, session, known);
    return { model: model as ServiceModel, cachedSessions };
  },
  detectProviders: () => detectProviders({ environment: env }),
});
