/**
 * `periodic`: the cluster-wide periodic tasks of the API (periodic/periodic-work.ts) — today the
 * billing review sweep (grace periods that ran out, scheduled cancellations), when billing is on.
 * Started when the app is ready, stopped when it closes. PERIODIC_WORK=off leaves them to other
 * replicas (or, in tests, to the test that wants them).
 */
import fp from 'fastify-plugin';
import type { Config } from '../../config.ts';
import { BILLING_REVIEW_QUEUE, PeriodicWork, type PeriodicTask } from '../../periodic/periodic-work.ts';

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const { periodic } = config;
    const tasks: PeriodicTask[] = [];
    const billing = app.billing;
    if (billing)
      tasks.push({
        name: BILLING_REVIEW_QUEUE,
        cron: periodic.billingReviewCron,
        run: async () => ({ changed: await billing.reviewDue() }),
      });
    const system = app.db.system;
    if (!periodic.enabled || tasks.length === 0 || !system) return;
    const work = new PeriodicWork({
      connectionString: config.database.systemUrl,
      record: system,
      tasks,
      cronMonitorSeconds: periodic.cronMonitorSeconds,
      onError: (err) => app.log.error({ err }, 'periodic: queue error'),
      log: (obj, msg) => app.log.info(obj, msg),
    });
    app.addHook('onReady', async () => work.start());
    app.addHook('onClose', async () => work.stop());
  },
  { name: 'periodic', fastify: '5.x', dependencies: ['db', 'billing'] },
);
