/**
 * The request side of account deletion and export.
 *
 * Deletion: re-authenticate (the account's email and password, checked with Cognito, must sign in
 * as the very user of the request's token), then one transaction marks the account deleting,
 * cancels and refunds its queued and running generations and enqueues the deletion job.
 *
 * Export: a zip of the user's live images (PNG bytes as stored, with their InvokeAI metadata
 * inside) plus `atelier-export.json` (account, boards, every image's metadata), uploaded to
 * `users/{id}/exports/{exportId}.zip` and answered with a presigned GET URL. The key is built
 * here from the verified user id; the object goes with the account (it is under the user's prefix).
 */
import { AppError, type AccountDeletion, type AccountExport } from '@atelier/common';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Pool } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import { publishEvent } from '../events/publish.ts';
import { usageEvent } from '../generations/repository.ts';
import type { JobQueue } from '../queue/job-queue.ts';
import { refundGeneration } from '../quota/usage.ts';
import { imageObjectKey, userPrefix } from '../storage/keys.ts';
import type { TokenVerifier } from '../auth/verifier.ts';
import type { IdentityProvider, UserObjects } from './peers.ts';
import {
  activeGenerations,
  exportAccount,
  exportBoards,
  exportImagesPage,
  markCanceled,
  markDeleting,
} from './repository.ts';
import type { DeletionJobs } from './worker.ts';
import { ZipFileWriter, ZipLimitError } from './zip-writer.ts';

export interface AccountServiceDeps {
  pool: Pool;
  queue: Pick<JobQueue, 'cancel'>;
  jobs: DeletionJobs;
  identity: Pick<IdentityProvider, 'passwordSignIn'>;
  verifier: TokenVerifier;
  objects: Pick<UserObjects, 'read' | 'upload' | 'presignGet' | 'deleteKey'>;
  /** Unit: seconds an export URL stays valid (≤ 15 minutes). */
  exportUrlSeconds: number;
  clock?: () => Date;
  /** Directory for export files while they are built. Default: the OS temp directory. */
  tmpDir?: string;
}

export interface AccountService {
  requestDeletion(userId: string, proof: { email: string; password: string }): Promise<AccountDeletion>;
  exportData(userId: string): Promise<AccountExport>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const deleted = () => new AppError('ACCOUNT_DELETED', 'This account has been deleted or is being deleted');

export function createAccountService(deps: AccountServiceDeps): AccountService {
  const clock = deps.clock ?? (() => new Date());

  async function reauthenticate(userId: string, email: string, password: string): Promise<void> {
    const token = await deps.identity.passwordSignIn(email, password);
    const refused = () =>
      new AppError('REAUTH_FAILED', 'The email and password do not sign in to this account', {
        userMessage: 'The email or password does not match this account. Type them again to confirm.',
      });
    if (!token) throw refused();
    // The password must belong to the account being deleted, not to any account its owner knows.
    const proof = await deps.verifier.verify(token).catch(() => null);
    if (!proof || proof.sub !== userId) throw refused();
  }

  return {
    async requestDeletion(userId, { email, password }) {
      await reauthenticate(userId, email, password);
      const requestedAt = await withUserTx(
        deps.pool,
        userId,
        async (tx) => {
          const mark = await markDeleting(tx, userId);
          if (mark.fresh) {
            // Refuse new work is the trigger's job (migration 0130); here the work already queued
            // or running stops, and what it reserved comes back (once, as for a cancel).
            for (const g of await activeGenerations(tx, userId)) {
              await markCanceled(tx, userId, g.id);
              const usage = await refundGeneration(tx, g.id, 'account deleted');
              if (g.status === 'queued' && g.job_id) await deps.queue.cancel(tx, g.job_id);
              if (usage) await publishEvent(tx, userId, usageEvent(usage));
              await publishEvent(tx, userId, { type: 'generation.canceled', generationId: g.id as never });
            }
          }
          await deps.jobs.enqueue(tx, userId);
          return mark.requestedAt;
        },
        { lockUser: true },
      );
      return { status: 'deleting', requestedAt: requestedAt.toISOString() };
    },

    async exportData(userId) {
      const dir = await mkdtemp(path.join(deps.tmpDir ?? tmpdir(), 'atelier-export-'));
      const file = path.join(dir, 'export.zip');
      const zip = await ZipFileWriter.create(file);
      try {
        // One read-only snapshot of the rows (REPEATABLE READ would hold a transaction open for
        // the whole S3 download; pages by id are enough: an image deleted meanwhile is skipped).
        const head = await withUserTx(deps.pool, userId, async (tx) => ({
          account: await exportAccount(tx, userId),
          boards: await exportBoards(tx, userId),
        }));
        if (!head.account || head.account.deleting) throw deleted();
        const images: unknown[] = [];
        let after: string | null = null;
        for (;;) {
          const page = await withUserTx(deps.pool, userId, (tx) => exportImagesPage(tx, userId, after, 200));
          if (page.length === 0) break;
          for (const img of page) {
            after = img.id;
            const body = await deps.objects.read(imageObjectKey(userId, img.id as never));
            if (!body) continue; // purged between the listing and the download
            await zip.add(`images/${img.id}.png`, await readAll(body), img.created_at);
            images.push({
              id: img.id,
              file: `images/${img.id}.png`,
              boardId: img.board_id,
              starred: img.starred,
              width: img.width,
              height: img.height,
              bytes: img.size,
              sha256: img.sha256,
              createdAt: img.created_at.toISOString(),
              metadata: img.metadata,
            });
          }
        }
        const exportedAt = clock();
        const manifest = {
          format: 'atelier-export/1',
          exportedAt: exportedAt.toISOString(),
          account: {
            id: userId,
            email: head.account.email,
            plan: head.account.plan,
            createdAt: head.account.created_at.toISOString(),
          },
          boards: head.boards.map((b) => ({ id: b.id, name: b.name, createdAt: b.created_at.toISOString() })),
          images,
        };
        await zip.add('atelier-export.json', Buffer.from(JSON.stringify(manifest, null, 2), 'utf8'), exportedAt);
        const bytes = await zip.finish();
        const key = `${userPrefix(userId)}exports/exp_${randomUUID()}.zip`;
        await deps.objects.upload(key, file, bytes, 'application/zip');
        // A deletion asked for while this export ran may already have cleared the prefix: then
        // this file must not outlive it. (If the mark commits after this check, the deletion job's
        // objects step, which runs after the mark, finds the file.)
        const deletingNow = await withUserTx(deps.pool, userId, (tx) => exportAccount(tx, userId));
        if (!deletingNow || deletingNow.deleting) {
          await deps.objects.deleteKey(key);
          throw deleted();
        }
        const seconds = deps.exportUrlSeconds;
        const url = await deps.objects.presignGet(key, seconds);
        return {
          url,
          expiresAt: new Date(clock().getTime() + seconds * 1000).toISOString(),
          images: images.length,
          bytes,
        };
      } catch (e) {
        await zip.abort();
        if (e instanceof ZipLimitError) throw new AppError('EXPORT_TOO_LARGE', e.message);
        throw e;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
