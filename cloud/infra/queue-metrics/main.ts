/**
 * The queue backlog publisher: a sidecar of the API task (always running, unlike the workers,
 * which scale to zero). Every interval it reads the generation queue and puts the metrics of
 * backlog.ts into CloudWatch; the worker service scales on them.
 *
 *   node cloud/infra/queue-metrics/main.ts --environment prod --region eu-west-1 [--interval 60] [--demand-window 10]
 *
 * The database comes from the cloud's own configuration (DATABASE_URL + ATELIER_DB_ROLE_PASSWORD,
 * role atelier_app, which may read pg-boss's tables).
 */
import { parseArgs } from 'node:util';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { loadConfig } from '../../src/config.ts';
import { createPool } from '../../src/db/pool.ts';
import { GENERATION_QUEUE } from '../../src/queue/job-queue.ts';
import { DEFAULT_WORKER_SCALING, demandOf, wantedTasks, type WorkerScalingPolicy } from '../lib/worker-scaling.ts';
import { demandDatum, METRIC_NAMESPACE, readBacklog, readLoad, toMetricData } from './backlog.ts';

const { values } = parseArgs({
  options: {
    environment: { type: 'string' },
    region: { type: 'string' },
    namespace: { type: 'string', default: METRIC_NAMESPACE },
    interval: { type: 'string', default: '60' },
    // The deployed scaling policy as JSON (atelier-stack.ts passes it); the defaults otherwise.
    policy: { type: 'string' },
  },
});
const policy: WorkerScalingPolicy = { ...DEFAULT_WORKER_SCALING, ...(values.policy ? JSON.parse(values.policy) : {}) };
const intervalSeconds = Number(values.interval);
if (
  !values.environment ||
  !values.region ||
  !Number.isInteger(intervalSeconds) ||
  intervalSeconds < 10 ||
  !Number.isInteger(policy.demandWindowPeriods) ||
  policy.demandWindowPeriods < 1
) {
  console.error(
    'usage: queue-metrics/main.ts --environment <name> --region <aws-region> [--interval <seconds ≥ 10>] [--policy <WorkerScalingPolicy JSON>]',
  );
  process.exit(2);
}
const config = loadConfig();
const pool = createPool(config, 'app', { max: 1 });
const cloudwatch = new CloudWatchClient({ region: values.region });
const log = (level: number, msg: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), scope: 'queue-metrics', msg, ...extra })}\n`);

/** The fleet sizes this process's recent periods wanted; each API task's sidecar keeps its own (CloudWatch takes the maximum). */
const wanted: number[] = [];

async function publish(): Promise<void> {
  try {
    const backlog = await readBacklog(pool, GENERATION_QUEUE);
    wanted.push(wantedTasks(await readLoad(pool, GENERATION_QUEUE, policy.loadWindowSeconds), policy));
    wanted.splice(0, Math.max(0, wanted.length - policy.demandWindowPeriods));
    const demand = demandOf(wanted, policy);
    const at = new Date();
    await cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: values.namespace,
        MetricData: [...toMetricData(backlog, values.environment!, at), demandDatum(demand, values.environment!, at)],
      }),
    );
    log(20, 'published', { ...backlog, demand });
  } catch (err) {
    // Missing data points make the scaling alarms hold their state; the next pass tries again.
    log(50, 'publish failed', { err: { message: (err as Error).message, name: (err as Error).name } });
  }
}

let timer: NodeJS.Timeout | undefined;
let stopping = false;
const loop = async () => {
  await publish();
  if (!stopping) timer = setTimeout(loop, intervalSeconds * 1000);
};
const stop = () => {
  stopping = true;
  clearTimeout(timer);
  cloudwatch.destroy();
  pool.end().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
log(30, 'started', { environment: values.environment, intervalSeconds });
await loop();
