import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export interface FolderFile {
  /** Path relative to the folder, with forward slashes. */
  rel: string;
  size: number;
  mtimeMs: number;
}

/** Every regular file under `dir`, sorted by relative path (symlinked folders are followed). */
export async function listFiles(dir: string): Promise<FolderFile[]> {
  const out: FolderFile[] = [];
  async function walk(abs: string, rel: string): Promise<void> {
    const entries = await readdir(abs, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const childAbs = path.join(abs, e.name);
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      const s = await stat(childAbs);
      if (s.isDirectory()) await walk(childAbs, childRel);
      else if (s.isFile()) out.push({ rel: childRel, size: s.size, mtimeMs: Math.trunc(s.mtimeMs) });
    }
  }
  await walk(dir, '');
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** A cheap identity of a folder's current contents: changes when any file is added, removed, resized or touched. */
export function fingerprint(files: readonly FolderFile[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.rel}\0${f.size}\0${f.mtimeMs}\n`);
  return h.digest('hex');
}
