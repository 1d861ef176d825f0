/**
 * The port an engine process serves the host protocol on: Electron's utilityProcess parent port or a
 * worker_threads parentPort, adapted to one Endpoint.
 */
import { parentPort } from 'node:worker_threads';
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
