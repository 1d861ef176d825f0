/**
 * Account deletion and export (issue 14): `DELETE /v1/me` (re-authentication in the body; the
 * deletion itself runs as a job, cloud/src/account/deletion.ts) and `GET /v1/me/export`.
 */
import { AccountDeletion, AccountExport, DeleteAccountBody, ErrorBody } from '@atelier/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { cognitoIdentity, s3UserObjects, type IdentityProvider, type UserObjects } from '../../account/peers.ts';
import { createAccountService } from '../../account/service.ts';
import { pgBossDeletionJobs, type DeletionJobs } from '../../account/worker.ts';
import { PgBossJobQueue } from '../../queue/pg-boss-job-queue.ts';

export interface AccountRoutesOptions {
  /** Default: Cognito from config.cognito. */
  identity?: Pick<IdentityProvider, 'passwordSignIn'>;
  /** Default: S3 from config.gen.s3 (closed with the app). */
  objects?: Pick<UserObjects, 'read' | 'upload' | 'presignGet' | 'deleteKey'>;
  /** Default: the app's pg-boss producer (AppDeps.queue). */
  jobs?: DeletionJobs;
}

const accountRoutes: FastifyPluginAsyncZod<AccountRoutesOptions> = async (app, opts) => {
  const { queue, verifier, config } = app;
  const pool = app.db.app;
  let objects = opts.objects;
  if (!objects) {
    const s3 = s3UserObjects(config.gen.s3);
    app.addHook('onClose', async () => s3.close());
    objects = s3;
  }
  const jobs =
    opts.jobs ??
    (queue instanceof PgBossJobQueue
      ? pgBossDeletionJobs(queue.boss)
      : (() => {
          throw new Error('account routes need `jobs` when the queue is not pg-boss');
        })());
  const service = createAccountService({
    pool,
    queue,
    jobs,
    verifier,
    identity: opts.identity ?? cognitoIdentity(config.cognito),
    objects,
    exportUrlSeconds: config.gen.s3.presignSeconds,
  });
  // One export at a time per user in this process: a double click shares the first one's answer.
  const exporting = new Map<string, Promise<AccountExport>>();

  app.delete(
    '/v1/me',
    {
      schema: {
        tags: ['account'],
        summary: 'Delete the account (re-authentication required)',
        description:
          'Checks the email and password with Cognito (they must sign in as this token’s user), marks the ' +
          'account deleting (no new work; queued and running generations are canceled and refunded) and ' +
          'starts the deletion job: Stripe subscription and customer, every object under users/{id}/, the ' +
          'rows (usage kept anonymised for accounting), then the Cognito user. Repeating the call is harmless.',
        body: DeleteAccountBody,
        response: { 202: AccountDeletion, 403: ErrorBody, 410: ErrorBody },
      },
    },
    async (req, reply) => reply.code(202).send(await service.requestDeletion(req.user!.id, req.body)),
  );

  app.get(
    '/v1/me/export',
    {
      schema: {
        tags: ['account'],
        summary: 'Export my data as a zip',
        description:
          'Builds a zip of every image (PNG with its generation metadata) and atelier-export.json (account, ' +
          'boards, image metadata), stores it under the account and answers with a presigned URL that expires.',
        response: { 200: AccountExport, 410: ErrorBody, 413: ErrorBody },
      },
    },
    async (req) => {
      const userId = req.user!.id;
      let p = exporting.get(userId);
      if (!p) {
        p = service.exportData(userId).finally(() => exporting.delete(userId));
        exporting.set(userId, p);
      }
      return p;
    },
  );
};
export default accountRoutes;
