/**
 * Usage a person can see (issue 16): the Account chart's data — the cloud's images per day plus
 * the images this computer made over the same days, which never count against quota — and the
 * low-quota notices already closed, kept in the library's settings table so each notice shows
 * once per period and level even across restarts.
 */
import { DismissedNotice, type IpcHandlers } from '@atelier/common';
import { z } from 'zod';
import { requireCloud } from '../account-session.ts';
import type { CloudClient } from '../cloud-client.ts';
import type { Db } from '../db.ts';

export interface UsageHandlersDeps {
  cloud: CloudClient | null;
  db: Db;
}

/** The settings table's key for closed notices (not a user setting: settings:get never shows it). */
const NOTICES_KEY = 'usage.dismissedNotices';
/** Closed notices kept: a few periods' worth; older periods can never show a notice again anyway. */
const KEEP = 24;
const Stored = z.array(DismissedNotice);

export function createUsageHandlers(
  deps: UsageHandlersDeps,
): Pick<IpcHandlers, 'usage:daily' | 'usage:dismissedNotices' | 'usage:dismissNotice'> {
  const { db } = deps;
  const localPerDay = db.prepare(
    `SELECT substr(created_at, 1, 10) AS date, count(*) AS images FROM images
      WHERE origin = 'local' AND created_at >= ? AND created_at < ? GROUP BY 1`,
  );
  function readDismissed(): DismissedNotice[] {
    const row = db.prepare('SELECT value FROM settings WHERE key = ?').get(NOTICES_KEY) as
      { value: string } | undefined;
    if (!row) return [];
    // A value this version cannot read (hand edit, older shape) only means notices may show again.
    const parsed = Stored.safeParse(JSON.parse(row.value));
    return parsed.success ? parsed.data : [];
  }
  return {
    'usage:daily': async () => {
      const cloud = await requireCloud(deps.cloud).api.usageDaily();
      const end = new Date(Date.parse(`${cloud.to}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
      const counted = new Map(
        (localPerDay.all(cloud.from, end) as { date: string; images: number }[]).map((r) => [r.date, r.images]),
      );
      return { ...cloud, local: cloud.days.map((d) => ({ date: d.date, images: counted.get(d.date) ?? 0 })) };
    },
    'usage:dismissedNotices': async () => ({ items: readDismissed() }),
    'usage:dismissNotice': async (notice) => {
      const same = (a: DismissedNotice) => a.periodStart === notice.periodStart && a.level === notice.level;
      const items = readDismissed().filter((a) => !same(a));
      items.push(notice);
      db.prepare(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ).run(NOTICES_KEY, JSON.stringify(items.slice(-KEEP)));
      return { ok: true };
    },
  };
}
