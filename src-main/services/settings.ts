/** User settings: one JSON value per key in SQLite, validated on read and write with the contract. */
import { Settings } from '@atelier/common';
import type { Db } from './db.ts';

export type SettingsStore = ReturnType<typeof createSettings>;

export function createSettings({ db, defaults }: { db: Db; defaults: Settings }) {
  const keys = Object.keys(Settings.shape) as (keyof Settings)[];
  function get(): Settings {
    const rows = db.prepare('SELECT key, value FROM settings').all() as { key: string; value: string }[];
    const stored: Record<string, unknown> = {};
    for (const r of rows) if ((keys as string[]).includes(r.key)) stored[r.key] = JSON.parse(r.value);
    // A stored value that no longer validates (older version, hand edit) falls back to its default.
    const merged: Record<string, unknown> = { ...defaults };
    for (const k of keys) {
      if (!(k in stored)) continue;
      const ok = Settings.shape[k].safeParse(stored[k]);
      if (ok.success) merged[k] = ok.data;
    }
    return Settings.parse(merged);
  }
  function update(patch: Partial<Settings>): Settings {
    const next = Settings.parse({ ...get(), ...patch });
    const upsert = db.prepare(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    db.transaction(() => {
      for (const k of Object.keys(patch) as (keyof Settings)[]) upsert.run(k, JSON.stringify(next[k]));
    })();
    return next;
  }
  return { get, update };
}
