import { AppError, type LibraryImage, type LocalJob, type RouteDecision } from '@atelier/common';
import { describe, expect, it } from 'vitest';
import { InMemoryApi } from '../testing/in-memory-api.ts';
import { createGalleryStore } from './gallery.ts';
import { createGenerateStore } from './generate.ts';
import { createSettingsStore, type ModelDownload } from './settings.ts';
import { connectEvents, createStores } from './index.ts';

const id = (p: string, n: number) => `${p}_${String(n).padStart(22, '0')}`;
const image = (n: number): LibraryImage => ({
  id: id('img', n),
  boardId: null,
  starred: false,
  origin: 'local',
  width: 64,
  height: 64,
  metadata: null,
  url: `u${n}`,
  thumbUrl: `t${n}`,
  createdAt: '2026-01-01T00:00:00Z',
});
const job = (over: Partial<LocalJob> = {}): LocalJob => ({
  id: id('job', 1),
  request: {
    prompt: 'p',
    negativePrompt: '',
    width: 512,
    height: 512,
    steps: 4,
    guidance: 1,
    scheduler: 'lcm',
    count: 1,
    target: 'local',
  },
  target: 'local',
  reason: 'r',
  state: 'running',
  position: 0,
  step: 0,
  total: 4,
  seed: 1,
  imageIds: [],
  error: null,
  cloudGenerationId: null,
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  ...over,
});

/** A library of `n` images served in pages by cursor, with soft delete and undo. */
function libraryApi(n: number) {
  let images = Array.from({ length: n }, (_, i) => image(i));
  const deleted = new Map<string, LibraryImage[]>();
  return new InMemoryApi()
    .handle('library:list', (q) => {
      const start = q.cursor ? Number(q.cursor) : 0;
      const limit = q.limit ?? 100;
      const items = images.slice(start, start + limit);
      return { items, nextCursor: start + limit < images.length ? String(start + limit) : null, total: images.length };
    })
    .handle('library:delete', ({ ids }) => {
      deleted.set(
        'tok',
        images.filter((i) => ids.includes(i.id)),
      );
      images = images.filter((i) => !ids.includes(i.id));
      return { undoToken: 'tok' };
    })
    .handle('library:undoDelete', ({ undoToken }) => {
      const back = deleted.get(undoToken) ?? [];
      images = [...back, ...images].sort((a, b) => a.id.localeCompare(b.id));
      return { restored: back.length };
    })
    .handle('boards:list', () => ({ items: [] }));
}

describe('gallery store', () => {
  it('pages through the library by cursor without duplicates, and a refresh keeps what is loaded', async () => {
    const api = libraryApi(250);
    const g = createGalleryStore(api, (e) => {
      throw e;
    });
    await g.getState().refresh();
    expect(g.getState()).toMatchObject({ total: 250, nextCursor: '100' });
    await g.getState().loadMore();
    await g.getState().loadMore();
    expect(g.getState().items).toHaveLength(250);
    expect(new Set(g.getState().items.map((i) => i.id)).size).toBe(250);
    expect(g.getState().nextCursor).toBeNull();
    await g.getState().loadMore(); // at the end: no call
    expect(api.callsTo('library:list')).toHaveLength(3);
    await g.getState().refresh();
    expect(api.callsTo('library:list').at(-1)).toMatchObject({ limit: 250 });
  });

  it('deletes the selection with an undo token and restores it', async () => {
    const api = libraryApi(5);
    const g = createGalleryStore(api, (e) => {
      throw e;
    });
    await g.getState().refresh();
    g.getState().click(id('img', 1), {});
    g.getState().click(id('img', 3), { shift: true });
    const ids = [...g.getState().selection.ids];
    expect(ids).toHaveLength(3);
    const token = await g.getState().remove(ids);
    expect(g.getState().items.map((i) => i.id)).toEqual([id('img', 0), id('img', 4)]);
    expect(g.getState().selection.ids.size).toBe(0);
    expect(await g.getState().undoRemove(token)).toBe(3);
    expect(g.getState().items).toHaveLength(5);
  });

  it('a filter change starts from the top with the filter in the query', async () => {
    const api = libraryApi(3);
    const g = createGalleryStore(api, () => undefined);
    g.getState().setFilter({ starred: true, search: '  boat ' });
    await new Promise((r) => setTimeout(r, 0));
    expect(api.callsTo('library:list').at(-1)).toEqual({ starred: true, search: 'boat', limit: 100 });
  });
});

describe('generate store', () => {
  const decision: RouteDecision = {
    target: 'cloud' as const,
    provider: null,
    reason: 'r',
    warning: null,
    cost: 'uses 1 of your 3 cloud images left this month',
    blocked: null,
    action: null,
    askCloud: false,
    memory: null,
  };

  it('stops an invalid form inline without asking the app', async () => {
    const api = new InMemoryApi();
    const s = createGenerateStore(api, () => undefined);
    expect(await s.getState().submit()).toBeNull();
    expect(s.getState().errors.prompt).toBe('prompt must not be empty');
    expect(api.calls).toHaveLength(0);
  });

  it('shows a quota refusal as a blocker, and server validation inline', async () => {
    let refusal: AppError = new AppError('QUOTA_EXCEEDED');
    const api = new InMemoryApi()
      .handle('router:explain', () => decision)
      .handle('jobs:submit', () => {
        throw refusal;
      });
    const s = createGenerateStore(api, () => undefined);
    s.getState().update({ prompt: 'a boat' });
    await s.getState().submit();
    expect(s.getState().blocker?.code).toBe('QUOTA_EXCEEDED');
    refusal = new AppError('VALIDATION_FAILED', 'bad', {
      details: { fields: [{ field: 'width', message: 'too wide for the cloud' }] },
    });
    await s.getState().submit();
    expect(s.getState().errors).toEqual({ width: 'too wide for the cloud' });
    expect(s.getState().blocker).toBeNull();
  });

  it('keeps only the newest routing explanation when answers arrive out of order', async () => {
    const resolvers: ((v: typeof decision) => void)[] = [];
    const api = new InMemoryApi().handle('router:explain', () => new Promise((r) => resolvers.push(r)));
    const s = createGenerateStore(api, () => undefined);
    const first = s.getState().explain();
    const second = s.getState().explain();
    resolvers[1]!({ ...decision, reason: 'newest' });
    resolvers[0]!({ ...decision, reason: 'stale' });
    await Promise.all([first, second]);
    expect(s.getState().decision?.reason).toBe('newest');
  });

  it("the 'native' size preset takes the model's own size, and the request carries it", async () => {
    const api = new InMemoryApi().handle('router:explain', () => decision);
    const s = createGenerateStore(api, () => undefined);
    s.getState().setSizePreset('native', { width: 64, height: 64 });
    expect(s.getState().form).toMatchObject({ sizePreset: 'native', width: '64', height: '64' });
    expect(api.callsTo('router:explain').at(-1)).toMatchObject({ width: 64, height: 64 });
    // Without a native size (an open model), 'native' is not a size: the form keeps what it had.
    s.getState().setSizePreset('768x512');
    s.getState().setSizePreset('native', null);
    expect(s.getState().form).toMatchObject({ width: '768', height: '512' });
  });

  it('re-asks the router when where-to-run, model or count change', async () => {
    const api = new InMemoryApi().handle('router:explain', () => decision);
    const s = createGenerateStore(api, () => undefined);
    s.getState().update({ prompt: 'x' });
    s.getState().update({ target: 'cloud' });
    s.getState().update({ count: '3' });
    s.getState().setSizePreset('768x512');
    expect(api.callsTo('router:explain')).toEqual([
      { target: 'cloud', count: 1, width: 512, height: 512 },
      { target: 'cloud', count: 3, width: 512, height: 512 },
      { target: 'cloud', count: 3, width: 768, height: 512 },
    ]);
  });

  it('a refusal known before the click does not submit; "Run on this computer instead" does, locally', async () => {
    const over: RouteDecision = {
      ...decision,
      warning: 'This run makes 4 images and you have 2 cloud images left this period.',
      blocked: 'QUOTA_EXCEEDED',
      action: 'run_local',
    };
    const api = new InMemoryApi()
      .handle('router:explain', (q) => (q.target === 'cloud' ? over : { ...decision, target: 'local', cost: null }))
      .handle('jobs:submit', (req) => ({
        jobs: [job({ request: { ...job().request, prompt: req.prompt } })],
        decision,
      }));
    const s = createGenerateStore(api, () => undefined);
    s.getState().update({ prompt: 'a boat', target: 'cloud', count: '4' });
    await s.getState().explain();
    expect(s.getState().decision?.blocked).toBe('QUOTA_EXCEEDED');
    expect(await s.getState().submit()).toBeNull();
    expect(api.callsTo('jobs:submit')).toHaveLength(0);
    const jobs = await s.getState().runInstead('local');
    expect(jobs).toHaveLength(1);
    expect(api.callsTo('jobs:submit')).toMatchObject([{ prompt: 'a boat', target: 'local', count: 4 }]);
  });

  it('asks once whether Automatic may use the cloud and keeps the answer in Settings', async () => {
    let autoCloud = 'ask';
    const api = new InMemoryApi()
      .handle('router:explain', () => ({ ...decision, target: 'local', askCloud: autoCloud === 'ask' }))
      .handle('settings:update', (patch) => {
        autoCloud = patch.autoCloud ?? autoCloud;
        return {} as never;
      });
    let reloaded = 0;
    const s = createGenerateStore(
      api,
      () => undefined,
      () => reloaded++,
    );
    await s.getState().explain();
    expect(s.getState().decision?.askCloud).toBe(true);
    await s.getState().answerCloud(false);
    expect(api.callsTo('settings:update')).toEqual([{ autoCloud: 'never' }]);
    expect(s.getState().decision?.askCloud).toBe(false);
    expect(reloaded).toBe(1);
  });

  it('the seed: dice picks a number and locks it (it will be used); locking an empty field takes the last run’s seed', () => {
    const s = createGenerateStore(
      new InMemoryApi().handle('router:explain', () => decision),
      () => undefined,
    );
    expect(s.getState().form).toMatchObject({ seed: '', seedLocked: false });
    s.getState().toggleSeedLock(4242);
    expect(s.getState().form).toMatchObject({ seed: '4242', seedLocked: true });
    s.getState().toggleSeedLock(null);
    expect(s.getState().form.seedLocked).toBe(false);
    s.getState().randomizeSeed();
    expect(s.getState().form.seedLocked).toBe(true);
    expect(s.getState().form.seed).toMatch(/^\d+$/);
  });
});

describe('events', () => {
  it('progress keeps the last preview; a failed local job offers a retry in the cloud', async () => {
    const api = new InMemoryApi().handle('jobs:retry', ({ jobId, target }) =>
      job({ id: jobId, target: target ?? 'local', state: 'queued' }),
    );
    const s = createStores(api);
    connectEvents(s);
    api.emit('jobs:changed', job());
    api.emit('jobs:progressed', {
      jobId: id('job', 1),
      step: 1,
      total: 4,
      elapsedMs: 5,
      preview: 'data:image/png;base64,AA',
    });
    api.emit('jobs:progressed', { jobId: id('job', 1), step: 2, total: 4, elapsedMs: 9 });
    expect(s.jobs.getState().progress[id('job', 1)]).toMatchObject({ step: 2, preview: 'data:image/png;base64,AA' });
    api.emit(
      'jobs:changed',
      job({
        state: 'failed',
        error: { code: 'ENGINE_OUT_OF_MEMORY', message: 'Out of memory.', offerCloudRetry: true },
      }),
    );
    expect(s.jobs.getState().progress[id('job', 1)]).toBeUndefined();
    const toast = s.app.getState().toasts.at(-1)!;
    expect(toast).toMatchObject({ kind: 'error', message: 'Out of memory.', action: { label: 'Retry in the cloud' } });
    toast.action!.run();
    await new Promise((r) => setTimeout(r, 0));
    expect(api.callsTo('jobs:retry')).toEqual([{ jobId: id('job', 1), target: 'cloud' }]);
    expect(s.jobs.getState().jobs[id('job', 1)]).toMatchObject({ state: 'queued', target: 'cloud' });
  });
});

describe('settings store: the model catalogue', () => {
  const entry = {
    id: 'sd-turbo',
    name: 'SD-Turbo',
    repo: 'onnxruntime/sd-turbo',
    revision: '6d0b4c1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    sizeBytes: 2_300_000_000,
    licence: 'Non-commercial',
    licenceUrl: null,
    hardware: 'A GPU with 4 GB',
    description: null,
    installed: false,
  };
  const dl = (over: Partial<ModelDownload>): ModelDownload => ({
    id: 'dl_1',
    url: 'https://huggingface.co/onnxruntime/sd-turbo',
    received: 0,
    total: 100,
    state: 'downloading',
    error: null,
    catalogueId: 'sd-turbo',
    name: 'SD-Turbo',
    ...over,
  });

  it('lists the catalogue, installs, keeps one download per model across a resume, reloads when done', async () => {
    let installed = false;
    let installs = 0;
    const api = new InMemoryApi()
      .handle('models:catalogue', () => ({ items: [{ ...entry, installed }] }))
      .handle('models:install', () => dl({ id: `dl_${++installs}` }))
      .handle('models:list', () => ({ items: [], downloads: [] }));
    const errors: unknown[] = [];
    const s = createSettingsStore(api, (e) => errors.push(e));
    await s.getState().loadCatalogue();
    expect(s.getState().catalogue).toHaveLength(1);
    await s.getState().install('sd-turbo');
    s.getState().downloadProgressed(dl({ id: 'dl_1', state: 'failed', received: 40, error: 'No connection.' }));
    await s.getState().install('sd-turbo'); // resume: a new download id for the same model
    expect(Object.values(s.getState().downloads).filter((d) => d.catalogueId === 'sd-turbo')).toHaveLength(1);
    installed = true;
    s.getState().downloadProgressed(dl({ id: 'dl_2', state: 'done', received: 100 }));
    await new Promise((r) => setTimeout(r, 0));
    expect(api.callsTo('models:list')).toHaveLength(1);
    expect(s.getState().catalogue?.[0]?.installed).toBe(true);
    expect(errors).toEqual([]);
  });

  it('a catalogue that cannot load says why instead of an empty list', async () => {
    const api = new InMemoryApi().handle('models:catalogue', () => {
      throw new AppError('OFFLINE', 'no network', { userMessage: 'You are offline. Connect and try again.' });
    });
    const s = createSettingsStore(api, () => undefined);
    await s.getState().loadCatalogue();
    expect(s.getState().catalogue).toBeNull();
    expect(s.getState().catalogueError).toBe('You are offline. Connect and try again.');
  });

  it('says the models are not known until they are listed, and why when listing fails', async () => {
    let fail = true;
    const api = new InMemoryApi().handle('models:list', () => {
      if (fail) throw new AppError('INTERNAL', 'boom', { userMessage: 'The model store is unreadable.' });
      return { items: [], downloads: [] };
    });
    const s = createSettingsStore(api, () => undefined);
    expect(s.getState().modelsLoaded).toBe(false);
    await expect(s.getState().loadModels()).rejects.toThrow();
    expect(s.getState()).toMatchObject({ modelsLoaded: false, modelsError: 'The model store is unreadable.' });
    fail = false;
    await s.getState().loadModels();
    // An empty list is still a known list: Generate may run (the route decision says what is missing).
    expect(s.getState()).toMatchObject({ modelsLoaded: true, modelsError: null });
  });
});
