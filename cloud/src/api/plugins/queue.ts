/** `queue`: the job queue the API enqueues into (inside the reservation's transaction). Owned by the caller. */
import fp from 'fastify-plugin';
import type { JobQueue } from '../../queue/job-queue.ts';

declare module 'fastify' {
  interface FastifyInstance {
    queue: JobQueue;
  }
}

export default fp<{ queue: JobQueue }>(
  async (app, opts) => {
    app.decorate('queue', opts.queue);
  },
  { name: 'queue', fastify: '5.x' },
);
