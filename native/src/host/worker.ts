/**
 * The engine process entry: run it as a worker_threads Worker (Node, the CLI, the cloud worker)
 * or as Electron's utilityProcess (the desktop). It serves the host protocol on whichever parent
 * port it finds; the protocol and the engine code are the same in both.
 */
import { parentPort } from 'node:worker_threads';
import { providerEnvironment } from '../providers/config.ts';
import { detectProviders } from '../providers/detect.ts';
import { serveEngine, type ServiceModel } from './engine-service.ts';
import { openModel } from './open-model.ts';
import type { Endpoint, HostReply } from './protocol.ts';

/** Electron's utilityProcess parent port: messages arrive as `{ data }` events and cannot transfer ArrayBuffers. */
interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
  off?(event: 'message', listener: (e: { data: unknown }) => void): void;
}

export function parentEndpoint(): Endpoint<unknown, HostReply> {
  // Electron's utilityProcess first: inside one, worker_threads.parentPort is null anyway, and a
  // test runner that runs files in worker threads must not have its own port taken over.
  const electronPort = (process as unknown as { parentPort?: ElectronParentPort }).parentPort;
  if (electronPort) {
    return {
      post: (m) => electronPort.postMessage(m),
      listen: (h) => {
        const l = (e: { data: unknown }) => h(e.data);
        electronPort.on('message', l);
        return () => electronPort.off?.('message', l);
      },
    };
  }
  if (parentPort) {
    const port = parentPort;
    return {
      post: (m, transfer) => port.postMessage(m, transfer ?? []),
      listen: (h) => {
        port.on('message', h);
        return () => port.off('message', h);
      },
    };
  }
  throw new Error('engine worker started without a parent port (run it as a Worker or a utilityProcess)');
}

// Lenient: a bad ATELIER_THREADS is the caller's to report; detection only needs the library paths.
const env = providerEnvironment(undefined, false);
serveEngine(parentEndpoint(), {
  openModel: async (dir, session, known) => {
    const { model, cachedSessions } = await openModel(dir, session, known);
    return { model: model as ServiceModel, cachedSessions };
  },
  detectProviders: () => detectProviders({ environment: env }),
});
