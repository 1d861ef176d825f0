/**
 * The committed demo model (native/models/atelier-demo-shapes): its files are exactly the ones its
 * manifest pins, the engine opens it with no special case, the store offers it as the default with
 * its description and vocabulary, and the CLI draws with it at its native size, byte for byte what
 * the engine draws in-process. What the pictures show is semantic.test.ts's concern.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng } from '../src/index.ts';
import { createEngineHost } from '../src/host/host.ts';
import { openModelFolder } from '../src/model/model-folder.ts';
import { readModelCard } from '../src/model/model-card.ts';
import { createModelStore } from '../src/store/store.ts';
import { DEMO_MODEL_DIR, DEMO_MODEL_ID, heldOutCases } from './demo-cases.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/atelier.ts');
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'atelier-demo-model-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const rel = prefix ? `${prefix}/${name}` : name;
    return statSync(path.join(dir, name)).isDirectory() ? filesUnder(path.join(dir, name), rel) : [rel];
  });
}

describe('the committed demo model', () => {
  it('holds exactly the files its manifest.sha256 lists, each with that sha256', () => {
    const lines = readFileSync(path.join(DEMO_MODEL_DIR, 'manifest.sha256'), 'utf8').trim().split('\n');
    const listed = new Map(
      lines.map((l) => {
        const m = /^([0-9a-f]{64}) {2}(\S+)$/.exec(l);
        expect(m, `malformed manifest line: ${l}`).not.toBeNull();
        return [m![2]!, m![1]!] as const;
      }),
    );
    const present = filesUnder(DEMO_MODEL_DIR)
      .filter((f) => f !== 'manifest.sha256')
      .sort();
    expect(present).toEqual([...listed.keys()].sort());
    for (const [rel, sha] of listed)
      expect(
        createHash('sha256')
          .update(readFileSync(path.join(DEMO_MODEL_DIR, rel)))
          .digest('hex'),
        rel,
      ).toBe(sha);
    const total = present.reduce((n, f) => n + statSync(path.join(DEMO_MODEL_DIR, f)).size, 0);
    expect(total).toBeLessThan(12 * 1024 * 1024);
  });

  it('passes the engine validation as any SD export does: int32 ids, int64 timestep, 4 latent channels, 77 tokens', async () => {
    const m = await openModelFolder(DEMO_MODEL_DIR, { executionProviders: ['cpu'] });
    try {
      expect(m.io.inputIds.type).toBe('int32');
      expect(m.io.timestep.type).toBe('int64');
      expect(m.latentChannels).toBe(4);
      expect(m.tokenizer.maxLength).toBe(77);
      expect(m.scheduler).toMatchObject({ betaSchedule: 'scaled_linear', predictionType: 'epsilon' });
    } finally {
      await Promise.all([m.textEncoder.release(), m.unet.release(), m.vaeDecoder.release()]);
    }
  });

  it('describes itself: native size 64×64, what it draws, its caption vocabulary', async () => {
    const card = await readModelCard(DEMO_MODEL_DIR);
    expect(card.nativeSize).toEqual({ width: 64, height: 64 });
    expect(card.description).toMatch(/shape/);
    expect(card.vocabulary).toMatchObject({
      shapes: ['circle', 'square', 'triangle'],
      colours: expect.arrayContaining(['red', 'green', 'blue', 'yellow']),
    });
    expect(card.examples).toContain('a red circle on a blue background');
  });

  it('is the default model of a fresh store, shipped read-only with its card', async () => {
    const store = createModelStore({ modelsDir: path.join(tmp, 'models'), fixtureDirs: [] });
    const def = await store.defaultModel();
    expect(def).toMatchObject({ id: DEMO_MODEL_ID, root: 'bundled', kind: 'bundled', name: 'Atelier demo: shapes' });
    expect(def!.card.nativeSize).toEqual({ width: 64, height: 64 });
    await expect(store.remove(DEMO_MODEL_ID)).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it('draws through the CLI at its native size, with no --model or --width, the bytes the engine host draws', async () => {
    const c = heldOutCases(1)[0]!;
    const out = path.join(tmp, 'cli.png');
    await promisify(execFile)(
      process.execPath,
      [BIN, 'generate', c.prompt, '--seed', String(c.seed), '--scheduler', 'euler_a', '--threads', '1', '--out', out],
      {
        env: {
          ...process.env,
          ATELIER_MODELS_DIR: path.join(tmp, 'cli-models'),
          ATELIER_CACHE_DIR: path.join(tmp, 'cli-cache'),
          ATELIER_FIXTURE_MODELS_DIR: '',
        },
        timeout: 600_000,
      },
    );
    const cliPng = readFileSync(out);
    // The engine host the desktop and the cloud worker use, on a store over the same folders.
    const host = createEngineHost({
      store: createModelStore({ modelsDir: path.join(tmp, 'cli-models'), fixtureDirs: [] }),
      provider: 'cpu',
      threads: 1,
      cacheDir: path.join(tmp, 'cli-cache'),
    });
    try {
      const r = await host.generate(undefined, { prompt: c.prompt, seed: c.seed, scheduler: 'euler_a' });
      expect(r.model.id).toBe(DEMO_MODEL_ID);
      expect(createHash('sha256').update(cliPng).digest('hex')).toBe(
        createHash('sha256').update(r.images[0]!.png).digest('hex'),
      );
    } finally {
      await host.close();
    }
    const picture = decodePng(cliPng);
    expect([picture.width, picture.height]).toEqual([64, 64]);
  }, 600_000);
});
