/**
 * A queue consumer in its own process, so tests can kill -9 it mid-job. Usage:
 *   node consumer-child.ts <config-json> <hang|complete>
 * Prints `STARTED <generationId> <attempt>` when a job starts and `DONE <generationId>` when it
 * finishes; in `hang` mode it never finishes (until killed).
 */
import type { Config } from '../../src/config.ts';
import { createPool } from '../../src/db/pool.ts';
import { runGenerations } from '../../src/queue/generation-runner.ts';
import { PgBossJobQueue } from '../../src/queue/pg-boss-job-queue.ts';

const config = JSON.parse(process.argv[2]!) as Config;
const mode = process.argv[3] as 'hang' | 'complete';
const pool = createPool(config, 'system', { max: 2 });
const queue = new PgBossJobQueue({
  connectionString: config.database.systemUrl,
  queue: config.queue,
  mode: 'consumer',
});
await queue.start();
await runGenerations({
  queue,
  pool,
  concurrency: 1,
  generate: async (gen, ctx) => {
    console.log(`STARTED ${gen.id} ${ctx.attempt}`);
    await ctx.progress(1, 2);
    if (mode === 'hang') await new Promise(() => {});
    await ctx.progress(2, 2);
    console.log(`DONE ${gen.id}`);
    return { imageIds: [] };
  },
});
console.log('READY');
process.on('SIGTERM', () => {
  void queue
    .stop(1000)
    .then(() => pool.end())
    .then(() => process.exit(0));
});
