/** The engine in an Electron utilityProcess, behind the engine host's pluggable transport. */
import { fileURLToPath } from 'node:url';
import { utilityProcess } from 'electron';
import type { EngineProcess } from '@atelier/engine/host/host';
import type { HostReply, HostRequest } from '@atelier/engine/host/protocol';

export function spawnUtilityEngine(): EngineProcess {
  const entry = fileURLToPath(import.meta.resolve('@atelier/engine/host/worker'));
  const child = utilityProcess.fork(entry, [], { serviceName: 'Atelier Engine', stdio: 'inherit' });
  let exitCb: ((reason: string) => void) | undefined;
  let exited = false;
  child.on('exit', (code) => {
    if (exited) return;
    exited = true;
    exitCb?.(`the engine process exited with code ${code}`);
  });
  return {
    endpoint: {
      // parentPort cannot transfer ArrayBuffers; they are copied, which the protocol allows.
      post: (m: HostRequest) => child.postMessage(m),
      listen: (h: (m: HostReply) => void) => {
        const l = (m: unknown) => h(m as HostReply);
        child.on('message', l);
        return () => child.off('message', l);
      },
    },
    onExit: (cb) => {
      exitCb = cb;
    },
    terminate: async () => {
      exited = true;
      child.kill();
    },
  };
}
