/**
 * The worker as its own process (so a test can SIGKILL or SIGTERM it) with gated engine steps:
 * the first step of a job goes through (progress 1/n is written and published), then the job
 * holds until it is aborted. It never finishes on its own, however fast the engine is.
 * Configuration comes from the environment as for `npm run cloud:worker`; prints WORKER READY.
 * SIGTERM/SIGINT: as the real worker (src/worker/main.ts), stop within SHUTDOWN_GRACE_SECONDS,
 * hand back the running job, exit 0.
 */
import { loadConfig } from '../../src/config.ts';
import { startWorker } from '../../src/worker/main.ts';
import { gatedLoader, StepGate } from './gated-loader.ts';

const gate = new StepGate();
gate.release(1);
const gated = gatedLoader(gate);
const worker = await startWorker(loadConfig(), { loader: gated.loader });
process.stdout.write('WORKER READY\n');
const stop = () => {
  worker.stop().then(
    () => gated.close().then(() => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
