/**
 * A test double of the engine host port: produces real (tiny) PNGs with the request's metadata,
 * reports one progress event per step, honours abort, and can be told to hold before finishing
 * or to fail with a given error. For queue tests; the engine itself is tested in native/.
 */
import { AppError, batchSeed } from '@atelier/common';
import type { EngineImage, EnginePort } from '../engine.ts';
import { makePng } from './png-fixture.ts';

export class InMemoryEngine implements EnginePort {
  calls: {
    prompt: string;
    seed: number;
    modelPath: string;
    inputs?: { initImage?: Uint8Array | undefined; mask?: Uint8Array | undefined };
  }[] = [];
  failWith: AppError | null = null;
  private gate: { promise: Promise<void>; release: () => void } | null = null;
  private started: (() => void)[] = [];

  /** Jobs block inside generate() until `release()`. */
  hold(): void {
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    this.gate = { promise, release };
  }
  release(): void {
    this.gate?.release();
    this.gate = null;
  }
  /** Resolves when the next generate() call has started. */
  nextStart(): Promise<void> {
    return new Promise((r) => this.started.push(r));
  }

  async providers() {
    return { providers: [{ name: 'cpu', usable: true, gpu: false, reason: null }], threads: 2 };
  }

  async generate(
    req: Parameters<EnginePort['generate']>[0],
    opts: Parameters<EnginePort['generate']>[1],
  ): Promise<{ images: EngineImage[] }> {
    this.calls.push({
      prompt: req.prompt,
      seed: req.seed,
      modelPath: req.modelPath,
      ...(opts.inputs ? { inputs: opts.inputs } : {}),
    });
    this.started.shift()?.();
    const total = req.steps * req.count;
    for (let s = 1; s <= total; s++) {
      if (opts.signal.aborted) throw new AppError('CANCELED');
      opts.onProgress({ step: s, total });
      if (s === 1 && this.gate) {
        const gate = this.gate.promise;
        await new Promise<void>((resolve, reject) => {
          gate.then(resolve);
          opts.signal.addEventListener('abort', () => reject(new AppError('CANCELED')), { once: true });
        });
      }
    }
    if (this.failWith) throw this.failWith;
    return {
      images: Array.from({ length: req.count }, (_, i) => {
        const seed = batchSeed(req.seed, i);
        const metadata = {
          positive_prompt: req.prompt,
          negative_prompt: req.negativePrompt,
          seed,
          steps: req.steps,
          cfg_scale: req.guidance,
          scheduler: req.scheduler,
          width: req.width,
          height: req.height,
          model: { name: req.model },
          generation_mode: 'txt2img',
          app_version: '0.1.0',
        };
        return {
          png: makePng({ rgb: [seed % 256, 0, 0], text: { invokeai_metadata: JSON.stringify(metadata) } }),
          seed,
          metadata,
        };
      }),
    };
  }

  async close(): Promise<void> {}
}
