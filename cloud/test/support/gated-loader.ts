/**
 * A model loader for worker tests whose denoising steps pass a gate the test controls, so cancel,
 * SIGKILL and SIGTERM tests act while a job is provably mid-run instead of making the job big and
 * slow and hoping it outlasts the action (which a faster engine or a GPU breaks).
 *
 *   const gate = new StepGate();
 *   const w = await startWorker(config, { loader: gatedLoader(gate) });
 *   … gate.release(1) …   // one step goes through: the worker reports progress 1/n
 *   … cancel …
 *   gate.release(1)       // the next step's progress write finds the generation canceled
 *
 * A step waits while the gate is closed and rejects with the signal's reason when the job is
 * aborted (cancel, lost lease, shutdown), as the engine does. When every step has passed, the
 * images come from the real engine (`real`, default: the engine host), so a gated job that is
 * allowed to finish still delivers real PNGs.
 */
import type { ModelLoader, WarmModel } from '../../src/worker/engine-pool.ts';
import { engineHostLoader } from '../../src/worker/engine-host-loader.ts';

export class StepGate {
  #allowed = 0;
  #waiters: (() => void)[] = [];
  /** Steps that have gone through so far (all jobs). */
  passed = 0;

  /** Lets `n` more steps through (Infinity: open for good). */
  release(n = 1): void {
    this.#allowed += n;
    while (this.#allowed > 0 && this.#waiters.length) {
      this.#allowed--;
      this.#waiters.shift()!();
    }
  }

  /** Waits for a step's turn; rejects with the abort reason when `signal` aborts first. */
  pass(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (this.#allowed > 0) {
      this.#allowed--;
      this.passed++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', onAbort);
        this.passed++;
        resolve();
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== go);
        reject(signal.reason as Error);
      };
      this.#waiters.push(go);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

export function gatedLoader(gate: StepGate, real?: ModelLoader): { loader: ModelLoader; close(): Promise<void> } {
  const hosted = real ? null : engineHostLoader({ threads: 1 });
  const load = real ?? hosted!.load;
  const loader: ModelLoader = async (modelId, modelDir) => {
    let inner: WarmModel | null = null;
    const warm: WarmModel = {
      async generate(req, opts) {
        for (let image = 0; image < req.count; image++)
          for (let step = 1; step <= req.steps; step++) {
            await gate.pass(opts.signal);
            opts.onProgress({ imageIndex: image, step, total: req.steps });
          }
        inner ??= await load(modelId, modelDir);
        return inner.generate(req, { signal: opts.signal, onProgress: () => {}, inputs: opts.inputs });
      },
      dispose: () => inner?.dispose(),
    };
    return warm;
  };
  return { loader, close: async () => hosted?.host.close() };
}
