import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '@atelier/common';
import { openDatabase, type Db } from '../db.ts';
import { createSettings } from '../settings.ts';
import { createUsageHandlers } from './usage.ts';

let dir: string;
let db: Db;
afterEach(() => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});
const open = () => {
  db = openDatabase(path.join(dir, 'library.db'));
  return createUsageHandlers({ cloud: null, db });
};

describe('low-quota notices the person closed', () => {
  it('are remembered per period and level, across a restart, without duplicates', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-usage-'));
    let h = open();
    expect(await h['usage:dismissedNotices']({})).toEqual({ items: [] });
    await h['usage:dismissNotice']({ periodStart: '2026-12-01T00:00:00.000Z', level: 80 });
    await h['usage:dismissNotice']({ periodStart: '2026-12-01T00:00:00.000Z', level: 80 });
    await h['usage:dismissNotice']({ periodStart: '2026-12-01T00:00:00.000Z', level: 100 });
    db.close();
    h = open();
    expect((await h['usage:dismissedNotices']({})).items).toEqual([
      { periodStart: '2026-12-01T00:00:00.000Z', level: 80 },
      { periodStart: '2026-12-01T00:00:00.000Z', level: 100 },
    ]);
  });

  it('are not a user setting: settings:get never shows them, and an unreadable value only lets notices show again', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-usage-'));
    const h = open();
    await h['usage:dismissNotice']({ periodStart: '2026-12-01T00:00:00.000Z', level: 80 });
    const settings = createSettings({
      db,
      defaults: {
        runMode: 'auto',
        modelsDir: dir,
        defaultModel: null,
        threads: 0,
        syncEnabled: true,
        autoUpdate: true,
        theme: 'system',
        defaultScheduler: 'euler_a',
        autoCloud: 'ask',
      },
    });
    expect(Object.keys(settings.get())).not.toContain('usage.dismissedNotices');
    db.prepare(`UPDATE settings SET value = '{"nope":1}' WHERE key = 'usage.dismissedNotices'`).run();
    expect(await h['usage:dismissedNotices']({})).toEqual({ items: [] });
  });

  it('the chart needs the cloud: without one it says so with a stable code', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-usage-'));
    const h = open();
    const err = await h['usage:daily']({}).catch((e: unknown) => e);
    expect(AppError.is(err, 'SERVICE_UNAVAILABLE')).toBe(true);
  });
});
