import { createHash, randomBytes } from 'node:crypto';
import { cp, lstat, mkdir, readdir, realpath, rename, rm, stat, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AppError, ModelId } from '@atelier/common';
import { canceled, fetchFile, redact, type DownloadProgress } from './download.ts';
import { hashModelDir } from '../model/hash.ts';
import { readModelCard, type ModelCard } from '../model/model-card.ts';
import { fingerprint, listFiles } from './hash.ts';
import { checkModelLayout, modelDisplayName, toModelId } from './layout.ts';
import { readState, writeState, type StoreState } from './state.ts';

/** The repository's generated fixture models (`npm run models:fixture`), when this is a checkout. */
export const REPO_FIXTURE_MODELS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../fixtures/models',
);

/** The models shipped with the product (committed to the repository): the trained demo model. */
export const BUNDLED_MODELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../models');

export interface ModelEntry {
  id: string;
  name: string;
  /** Absolute folder the engine loads (a linked model's target). */
  dir: string;
  /**
   * 'user' = the models folder; 'bundled' = shipped with the product (read-only);
   * 'fixtures' = the repository's generated fixture models (read-only).
   */
  root: 'user' | 'bundled' | 'fixtures';
  kind: 'copy' | 'link' | 'download' | 'folder' | 'bundled' | 'fixture';
  /** Unit: bytes, all files together. */
  size: number;
  /** The engine's model hash (model/hash.ts: sha256 over paths, sizes and bytes), cached while the folder is unchanged. */
  sha256: string;
  isDefault: boolean;
  /**
   * A test fixture: random weights, so it draws noise. True for the project's generated
   * `atelier-fixture-*` models and for folders whose atelier.json says `"fixture": true`.
   */
  fixture: boolean;
  /** What the folder's atelier.json says about the model (description, vocabulary, native size). */
  card: ModelCard;
}

export interface ModelStoreOptions {
  /** The user's models folder (created on first write). */
  modelsDir: string;
  /** Read-only extra roots, default: the repository's fixture models when present. */
  fixtureDirs?: string[];
  /** Read-only roots of models shipped with the product, default: BUNDLED_MODELS_DIR. */
  bundledDirs?: string[];
  /** Deep validation run before an import or download is accepted (e.g. engine loadModel + dispose). */
  validate?: (dir: string) => Promise<void>;
}

/** The download format: a JSON manifest listing every file of a model folder. */
export const ModelManifest = z.object({
  id: ModelId.optional(),
  name: z.string().max(200).optional(),
  files: z
    .array(
      z.object({
        /** Path inside the model folder, forward slashes, e.g. "unet/model.onnx". */
        path: z
          .string()
          .min(1)
          .refine(
            (p) => !p.startsWith('/') && !/^[a-zA-Z]:/.test(p) && !p.split(/[\\/]/).some((s) => s === '..' || s === ''),
            'path must be relative, without ".." segments',
          ),
        /** Absolute, or relative to the manifest's own URL. */
        url: z.string().min(1),
        sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be 64 hex digits'),
        /** Unit: bytes. */
        size: z.number().int().min(0),
      }),
    )
    .min(1),
});
export type ModelManifest = z.infer<typeof ModelManifest>;

export interface ImportOptions {
  /** Link to the folder instead of copying it (the folder must then stay where it is). */
  link?: boolean;
  id?: string;
}

export interface DownloadOptions {
  /** Expected sha256 of the manifest itself (pins the whole model). */
  sha256?: string;
  id?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Reconnects per file after a dropped connection. */
  retries?: number;
}

export interface ModelStore {
  readonly modelsDir: string;
  list(): Promise<ModelEntry[]>;
  /** The default model: the persisted choice, else a bundled model, else a fixture model, else the alphabetically first. */
  defaultModel(): Promise<ModelEntry | undefined>;
  setDefault(id: string): Promise<ModelEntry>;
  /** A model id or a folder path → the installed entry or, for a folder, its description. */
  resolve(idOrDir?: string): Promise<ModelEntry>;
  importFolder(dir: string, opts?: ImportOptions): Promise<ModelEntry>;
  download(manifestUrl: string, opts?: DownloadOptions): Promise<ModelEntry>;
  /**
   * Installs a complete folder that was downloaded into `stagingDir()` (e.g. by the catalogue):
   * validated, then moved into place under `id` in one rename. `source` is recorded.
   */
  adoptFolder(dir: string, opts: { id: string; source: string }): Promise<ModelEntry>;
  /** A staging folder on the models folder's file system for a download keyed by `key` (kept across runs: resumable). */
  stagingDir(key: string): string;
  remove(id: string): Promise<void>;
}

const PARTIAL_DIR = '.partial';

export function createModelStore(opts: ModelStoreOptions): ModelStore {
  const modelsDir = path.resolve(opts.modelsDir);
  const fixtureDirs = (opts.fixtureDirs ?? [REPO_FIXTURE_MODELS_DIR]).map((d) => path.resolve(d));
  const bundledDirs = (opts.bundledDirs ?? [BUNDLED_MODELS_DIR]).map((d) => path.resolve(d));
  // Serialises state read-modify-write inside this process; the file itself is replaced atomically.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };

  async function describe(
    dir: string,
    id: string,
    root: ModelEntry['root'],
    kind: ModelEntry['kind'],
    state: StoreState,
  ): Promise<{ entry: ModelEntry; changed: boolean }> {
    const real = await realpath(dir);
    const files = await listFiles(real);
    const fp = fingerprint(files);
    const cached = state.hashes[real];
    let changed = false;
    let sha256: string;
    let size: number;
    if (cached && cached.fingerprint === fp) {
      sha256 = cached.sha256;
      size = cached.size;
    } else {
      sha256 = await hashModelDir(real);
      size = files.reduce((n, f) => n + f.size, 0);
      state.hashes[real] = { fingerprint: fp, sha256, size };
      changed = true;
    }
    const card = await readModelCard(real);
    return {
      entry: {
        id,
        name: card.name ?? (await modelDisplayName(real)),
        dir: real,
        root,
        kind,
        size,
        sha256,
        isDefault: false,
        fixture: card.fixture || id.startsWith('atelier-fixture-'),
        card,
      },
      changed,
    };
  }

  async function scan(state: StoreState): Promise<{ entries: ModelEntry[]; changed: boolean }> {
    const byId = new Map<string, ModelEntry>();
    let changed = false;
    const seenDirs = new Set<string>();
    const roots: [string, ModelEntry['root']][] = [
      [modelsDir, 'user'],
      ...bundledDirs.map((d) => [d, 'bundled'] as [string, 'bundled']),
      ...fixtureDirs.map((d) => [d, 'fixtures'] as [string, 'fixtures']),
    ];
    for (const [rootDir, root] of roots) {
      let names: string[];
      try {
        names = (await readdir(rootDir)).sort();
      } catch {
        continue;
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const dir = path.join(rootDir, name);
        let isDir: boolean;
        try {
          isDir = (await stat(dir)).isDirectory();
        } catch {
          continue; // a dangling link: its target was moved or deleted
        }
        if (!isDir || (await checkModelLayout(dir)).includes('model_index.json is missing')) continue;
        const id = toModelId(name);
        if (byId.has(id)) continue; // the user's models folder wins over a fixture with the same id
        const installed = root === 'user' ? state.models[id] : undefined;
        const kind: ModelEntry['kind'] =
          root === 'fixtures' ? 'fixture' : root === 'bundled' ? 'bundled' : (installed?.kind ?? 'folder');
        const d = await describe(dir, id, root, kind, state);
        changed ||= d.changed;
        seenDirs.add(d.entry.dir);
        byId.set(id, d.entry);
      }
    }
    // Forget what is gone, so the state file does not grow with stale entries.
    for (const id of Object.keys(state.models))
      if (!byId.has(id) || byId.get(id)!.root !== 'user') {
        delete state.models[id];
        changed = true;
      }
    for (const dir of Object.keys(state.hashes))
      if (!seenDirs.has(dir)) {
        delete state.hashes[dir];
        changed = true;
      }
    const entries = [...byId.values()];
    const def = pickDefault(entries, state.defaultModel);
    for (const e of entries) e.isDefault = e.id === def?.id;
    return { entries: entries.sort((a, b) => a.id.localeCompare(b.id)), changed };
  }

  async function listLocked(): Promise<{ state: StoreState; entries: ModelEntry[] }> {
    const state = await readState(modelsDir);
    const { entries, changed } = await scan(state);
    if (changed) await writeState(modelsDir, state);
    return { state, entries };
  }

  const list = () => serial(async () => (await listLocked()).entries);

  async function findOrThrow(id: string): Promise<ModelEntry> {
    const entries = await list();
    const e = entries.find((m) => m.id === id);
    if (!e) throw notFound(id, entries);
    return e;
  }

  async function validateFolder(dir: string): Promise<void> {
    const problems = await checkModelLayout(dir);
    if (problems.length)
      throw new AppError('ENGINE_MODEL_INVALID', `${dir}: ${problems.join('; ')}`, {
        userMessage: `This is not a complete ONNX Stable Diffusion folder: ${problems.join('; ')}.`,
        details: { problems },
      });
    if (opts.validate) await opts.validate(dir);
  }

  async function ensureFreeId(id: string): Promise<void> {
    const parsed = ModelId.safeParse(id);
    if (!parsed.success)
      throw new AppError('VALIDATION_FAILED', `"${id}" is not a valid model id`, {
        userMessage: `"${id}" is not a valid model id: use lower-case letters, digits, ".", "_" and "-".`,
      });
    const entries = await list();
    if (entries.some((e) => e.id === id))
      throw new AppError('CONFLICT', `A model with id "${id}" is already installed`, {
        userMessage: `A model named "${id}" is already installed. Remove it first or choose another id with --id.`,
      });
  }

  async function record(id: string, kind: 'copy' | 'link' | 'download', source: string): Promise<ModelEntry> {
    return serial(async () => {
      const state = await readState(modelsDir);
      state.models[id] = { id, kind, source, installedAt: new Date().toISOString() };
      const { entries } = await scan(state);
      await writeState(modelsDir, state);
      const e = entries.find((m) => m.id === id);
      if (!e) throw new AppError('INTERNAL', `model ${id} vanished right after it was installed`);
      return e;
    });
  }

  return {
    modelsDir,
    list,

    async defaultModel() {
      return (await list()).find((e) => e.isDefault);
    },

    async setDefault(id) {
      const e = await findOrThrow(id);
      await serial(async () => {
        const state = await readState(modelsDir);
        state.defaultModel = id;
        await writeState(modelsDir, state);
      });
      return { ...e, isDefault: true };
    },

    async resolve(idOrDir) {
      if (idOrDir === undefined) {
        const entries = await list();
        const def = entries.find((e) => e.isDefault);
        if (!def)
          throw new AppError('ENGINE_MODEL_NOT_FOUND', 'No model is installed', {
            userMessage:
              'No model is installed. Import one with `atelier models import <folder>` (or run `npm run models:fixture` in a checkout).',
          });
        return def;
      }
      if (looksLikePath(idOrDir)) {
        const dir = path.resolve(idOrDir);
        let s;
        try {
          s = await stat(dir);
        } catch {
          throw new AppError('ENGINE_MODEL_NOT_FOUND', `${dir} does not exist`, {
            userMessage: `The model folder ${dir} does not exist.`,
          });
        }
        if (!s.isDirectory())
          throw new AppError('ENGINE_MODEL_INVALID', `${dir} is not a folder`, {
            userMessage: `${dir} is not a model folder.`,
          });
        const entries = await list();
        const real = await realpath(dir);
        const known = entries.find((e) => e.dir === real);
        if (known) return known;
        return serial(async () => {
          const state = await readState(modelsDir);
          const { entry, changed } = await describe(dir, toModelId(path.basename(real)), 'user', 'folder', state);
          if (changed) await writeState(modelsDir, state);
          return entry;
        });
      }
      return findOrThrow(idOrDir);
    },

    async importFolder(src, io = {}) {
      const from = path.resolve(src);
      try {
        if (!(await stat(from)).isDirectory()) throw new Error('not a folder');
      } catch {
        throw new AppError('ENGINE_MODEL_NOT_FOUND', `${from} is not a folder`, {
          userMessage: `${from} is not a folder. Pass the folder that contains model_index.json.`,
        });
      }
      await validateFolder(from);
      const id = io.id ?? toModelId(path.basename(from));
      await ensureFreeId(id);
      await mkdir(modelsDir, { recursive: true });
      const dest = path.join(modelsDir, id);
      if (io.link) {
        await symlink(await realpath(from), dest, process.platform === 'win32' ? 'junction' : 'dir');
      } else {
        const tmp = path.join(modelsDir, PARTIAL_DIR, `import-${id}-${randomBytes(4).toString('hex')}`);
        try {
          await cp(from, tmp, { recursive: true, dereference: true, errorOnExist: true, force: false });
          await rename(tmp, dest);
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      }
      return record(id, io.link ? 'link' : 'copy', from);
    },

    async download(manifestUrl, dopts = {}) {
      const signal = dopts.signal;
      const manifest = await fetchManifest(manifestUrl, dopts.sha256, signal);
      const id =
        dopts.id ??
        manifest.id ??
        toModelId(path.posix.basename(new URL(manifestUrl).pathname).replace(/\.json$/i, ''));
      await ensureFreeId(id);
      // Staging is keyed by the manifest URL, so running the same download again resumes it.
      const staging = path.join(
        modelsDir,
        PARTIAL_DIR,
        `download-${id}-${createHash('sha256').update(manifestUrl).digest('hex').slice(0, 12)}`,
      );
      const totalBytes = manifest.files.reduce((n, f) => n + f.size, 0);
      let doneBytes = 0;
      for (const [i, f] of manifest.files.entries()) {
        if (signal?.aborted) throw canceled();
        const dest = path.join(staging, ...f.path.split('/'));
        const fileUrl = new URL(f.url, manifestUrl).toString();
        const present = await stat(dest).then(
          (s) => s.size === f.size,
          () => false,
        );
        if (!present) {
          const base = doneBytes;
          await fetchFile({
            url: fileUrl,
            dest,
            sha256: f.sha256,
            size: f.size,
            signal,
            retries: dopts.retries,
            onBytes: (fileBytes) =>
              dopts.onProgress?.({
                file: f.path,
                fileIndex: i,
                fileCount: manifest.files.length,
                fileBytes,
                fileTotal: f.size,
                receivedBytes: base + fileBytes,
                totalBytes,
              }),
          });
        }
        doneBytes += f.size;
        dopts.onProgress?.({
          file: f.path,
          fileIndex: i,
          fileCount: manifest.files.length,
          fileBytes: f.size,
          fileTotal: f.size,
          receivedBytes: doneBytes,
          totalBytes,
        });
      }
      await validateFolder(staging);
      await mkdir(modelsDir, { recursive: true });
      await rename(staging, path.join(modelsDir, id));
      return record(id, 'download', redact(manifestUrl));
    },

    async adoptFolder(dir, ao) {
      await ensureFreeId(ao.id);
      await validateFolder(dir);
      await mkdir(modelsDir, { recursive: true });
      await rename(dir, path.join(modelsDir, ao.id));
      return record(ao.id, 'download', redact(ao.source));
    },

    stagingDir: (key) => path.join(modelsDir, PARTIAL_DIR, key),

    async remove(id) {
      const e = await findOrThrow(id);
      if (e.root === 'bundled')
        throw new AppError('FORBIDDEN', `${id} is shipped with Atelier`, {
          userMessage: `"${id}" is shipped with Atelier and cannot be removed; choose another default model instead.`,
        });
      if (e.root !== 'user')
        throw new AppError('FORBIDDEN', `${id} is a fixture model of the repository`, {
          userMessage: `"${id}" is a repository fixture model and cannot be removed here; delete native/fixtures/models/${id} instead.`,
        });
      const entryPath = path.join(modelsDir, id);
      await serial(async () => {
        const s = await lstat(entryPath).catch(() => undefined);
        // A linked model: remove the link, never the user's folder it points to.
        if (s?.isSymbolicLink()) await unlink(entryPath);
        else await rm(entryPath, { recursive: true, force: true });
        const state = await readState(modelsDir);
        delete state.models[id];
        delete state.hashes[e.dir];
        if (state.defaultModel === id) state.defaultModel = null;
        await writeState(modelsDir, state);
      });
    },
  };
}

function pickDefault(entries: readonly ModelEntry[], chosen: string | null): ModelEntry | undefined {
  if (chosen) {
    const e = entries.find((m) => m.id === chosen);
    if (e) return e;
  }
  const byId = [...entries].sort((a, b) => a.id.localeCompare(b.id));
  return byId.find((e) => e.root === 'bundled') ?? byId.find((e) => e.root === 'fixtures') ?? byId[0];
}

function looksLikePath(s: string): boolean {
  return s.includes('/') || s.includes('\\') || s.startsWith('.') || path.isAbsolute(s);
}

function notFound(id: string, entries: readonly ModelEntry[]): AppError {
  const installed = entries.map((e) => e.id).join(', ') || 'none';
  return new AppError('ENGINE_MODEL_NOT_FOUND', `No installed model "${id}"`, {
    userMessage: `No installed model "${id}" (installed: ${installed}). See \`atelier models list\`.`,
    details: { id },
  });
}

async function fetchManifest(
  url: string,
  sha256: string | undefined,
  signal: AbortSignal | undefined,
): Promise<ModelManifest> {
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(url);
  } catch {
    throw new AppError('VALIDATION_FAILED', `"${url}" is not a URL`, { userMessage: `"${url}" is not a URL.` });
  }
  if (parsedUrl.protocol !== 'http:' && parsedUrl.protocol !== 'https:')
    throw new AppError('VALIDATION_FAILED', `Only http(s) URLs can be downloaded (got ${parsedUrl.protocol})`, {
      userMessage: 'Only http:// and https:// URLs can be downloaded.',
    });
  let bytes: Uint8Array;
  try {
    const res = await fetch(parsedUrl, { signal: signal ?? null });
    if (!res.ok) {
      await res.body?.cancel();
      throw new AppError(
        res.status >= 500 ? 'DOWNLOAD_FAILED' : 'NOT_FOUND',
        `GET ${redact(url)} answered ${res.status}`,
        {
          userMessage: `The manifest URL answered HTTP ${res.status}.`,
        },
      );
    }
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    if (AppError.is(e)) throw e;
    if (signal?.aborted) throw canceled();
    throw new AppError('DOWNLOAD_FAILED', `GET ${redact(url)} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (sha256) {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256.toLowerCase())
      throw new AppError('CHECKSUM_MISMATCH', `manifest sha256 is ${actual}, expected ${sha256}`, {
        details: { expected: sha256, actual },
      });
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new AppError('VALIDATION_FAILED', `${redact(url)} is not JSON`, {
      userMessage: 'The URL does not point to a model manifest (JSON with a "files" list). See native/README.md.',
    });
  }
  const r = ModelManifest.safeParse(json);
  if (!r.success)
    throw new AppError(
      'VALIDATION_FAILED',
      `Invalid model manifest: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      {
        userMessage: 'The model manifest is not valid. See native/README.md for the format.',
      },
    );
  return r.data;
}

export type { DownloadProgress } from './download.ts';
