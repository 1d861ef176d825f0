/**
 * Removes the S3 objects of images tombstoned longer ago than the retention period. The row stays
 * (with purged_at) so devices that sync later still learn of the deletion. Run once per cluster as a
 * pg-boss schedule (worker/periodic.ts); safe even if two passes overlap: candidates are claimed
 * with FOR UPDATE SKIP LOCKED inside one transaction.
 */
import type { Pool } from '../db/pool.ts';
import { withSystemTx } from '../db/tx.ts';
import { markPurged, purgeCandidates } from '../db/gallery/images-repository.ts';
import { imageObjectKey, thumbObjectKey } from '../storage/keys.ts';
import type { ObjectStore } from '../storage/object-store.ts';

export interface JanitorOptions {
  db: Pool;
  store: ObjectStore;
  /** Unit: milliseconds a tombstoned image's bytes are kept (undo window, backups). */
  retentionMs: number;
  batchSize?: number;
  now?: () => Date;
}

/** One pass: purges up to `batchSize` images; returns how many. Storage errors leave the rows for the next pass. */
export async function purgeDeletedImages(opts: JanitorOptions): Promise<number> {
  const now = opts.now?.() ?? new Date();
  const cutoff = new Date(now.getTime() - opts.retentionMs);
  return withSystemTx(opts.db, async (tx) => {
    const batch = await purgeCandidates(tx, cutoff, opts.batchSize ?? 200);
    if (batch.length === 0) return 0;
    await opts.store.delete(
      batch.flatMap((c) => [imageObjectKey(c.userId, c.id), thumbObjectKey(c.userId, c.id, c.thumbMime)]),
    );
    await markPurged(
      tx,
      batch.map((c) => c.id),
    );
    return batch.length;
  });
}
