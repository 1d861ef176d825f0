import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

export const STATE_FILE = 'atelier-models.json';

const InstalledModel = z.object({
  id: z.string(),
  /** How it got here: copied from a folder, linked to one, or downloaded. */
  kind: z.enum(['copy', 'link', 'download']),
  /** Where it came from: the imported folder or the manifest URL. */
  source: z.string(),
  installedAt: z.string(),
});
export type InstalledModel = z.infer<typeof InstalledModel>;

const HashCacheEntry = z.object({ fingerprint: z.string(), sha256: z.string(), size: z.number() });
export type HashCacheEntry = z.infer<typeof HashCacheEntry>;

const StoreState = z.object({
  version: z.literal(1),
  /** The user's chosen default model id, if any. */
  defaultModel: z.string().nullable(),
  models: z.record(z.string(), InstalledModel),
  /** Folder hashes by absolute folder path, reused while the folder's fingerprint is unchanged. */
  hashes: z.record(z.string(), HashCacheEntry),
});
export type StoreState = z.infer<typeof StoreState>;

export const emptyState = (): StoreState => ({ version: 1, defaultModel: null, models: {}, hashes: {} });

/** Reads the install state; a missing file is an empty store, a corrupt one is set aside and replaced. */
export async function readState(modelsDir: string): Promise<StoreState> {
  const file = path.join(modelsDir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return emptyState();
  }
  try {
    return StoreState.parse(JSON.parse(text));
  } catch {
    // Keep the unreadable file for inspection instead of silently losing it.
    await rename(file, `${file}.corrupt-${Date.now()}`).catch(() => undefined);
    return emptyState();
  }
}

/** Writes the state atomically: a temp file in the same folder, flushed, then renamed over the old one. */
export async function writeState(modelsDir: string, state: StoreState): Promise<void> {
  await mkdir(modelsDir, { recursive: true });
  const file = path.join(modelsDir, STATE_FILE);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { flush: true });
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}
