/**
 * The real engine worker (./src/host/worker.ts) with one latch for tests: after the progress event
 * number `gateAt` of a job is posted, the engine thread waits until the test opens the gate. A test
 * that cancels on that event opens the gate only after its cancel message is on its way, so "stopped
 * within a step of the cancel" holds however fast the engine runs (no job sized to outlast the abort).
 */
import { workerData } from 'node:worker_threads';
import { providerEnvironment } from '../src/providers/config.ts';
import { detectProviders } from '../src/providers/detect.ts';
import { serveEngine, type ServiceModel } from '../src/host/engine-service.ts';
import { openModel } from '../src/host/open-model.ts';
import { parentEndpoint } from '../src/host/parent-endpoint.ts';

const { gate, gateAt } = workerData as { gate: SharedArrayBuffer; gateAt: number };
const latch = new Int32Array(gate);
/** Bounded: a test that never opens the gate fails on its own deadline instead of hanging the thread. */
const GATE_DEADLINE_MS = 20_000;

serveEngine(parentEndpoint(), {
  openModel: async (dir, session, known) => {
    const { model, cachedSessions } = await openModel(dir, session, known);
    const real = model as ServiceModel;
    const gated: ServiceModel = {
      id: real.id,
      dir: real.dir,
      hash: real.hash,
      provider: real.provider,
      dispose: () => real.dispose(),
      generate: (request, opts) => {
        let events = 0;
        return real.generate(request, {
          ...opts,
          onProgress: (e) => {
            opts.onProgress(e);
            if (++events === gateAt) Atomics.wait(latch, 0, 0, GATE_DEADLINE_MS);
          },
        });
      },
    };
    return { model: gated, cachedSessions };
  },
  detectProviders: () => detectProviders({ environment: providerEnvironment(undefined, false) }),
});
