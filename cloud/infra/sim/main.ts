/**
 * `npm run sim:autoscale`: one simulated day of generation traffic against the GPU fleet's scaling
 * policy as the CDK app deploys it (lib/worker-scaling.ts), next to an Erlang-C-sized oracle fleet.
 * Deterministic: the same options print the same figures.
 *
 *   npm run sim:autoscale [-- --seed 14 --peak-rate 1.2 --startup 240 --target-wait 20 --window 8 --max-tasks 4]
 */
import { parseArgs } from 'node:util';
import { DEFAULT_WORKER_SCALING, GPU_HOST_STARTUP_SECONDS, type WorkerScalingPolicy } from '../lib/worker-scaling.ts';
import {
  DEFAULT_TRAFFIC,
  generateTraffic,
  simulateOracle,
  simulatePolicy,
  summarize,
  type Summary,
} from './autoscale.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(DEFAULT_TRAFFIC.seed) },
    'peak-rate': { type: 'string', default: String(DEFAULT_TRAFFIC.peakRate) },
    startup: { type: 'string', default: String(GPU_HOST_STARTUP_SECONDS) },
    'per-task': { type: 'string', default: String(DEFAULT_WORKER_SCALING.backlogPerTask) },
    'target-wait': { type: 'string', default: String(DEFAULT_WORKER_SCALING.targetWaitSeconds) },
    'load-window': { type: 'string', default: String(DEFAULT_WORKER_SCALING.loadWindowSeconds) },
    window: { type: 'string', default: String(DEFAULT_WORKER_SCALING.demandWindowPeriods) },
    'min-tasks': { type: 'string', default: String(DEFAULT_WORKER_SCALING.minTasks) },
    'max-tasks': { type: 'string', default: String(DEFAULT_WORKER_SCALING.maxTasks) },
    'oracle-target': { type: 'string', default: '20' },
  },
});
const num = (name: keyof typeof values, min: number): number => {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v < min) {
    console.error(`--${name} must be a number ≥ ${min} (got ${String(values[name])})`);
    process.exit(2);
  }
  return v;
};

const traffic = { ...DEFAULT_TRAFFIC, seed: num('seed', 0), peakRate: num('peak-rate', 0.001) };
const policy: WorkerScalingPolicy = {
  ...DEFAULT_WORKER_SCALING,
  backlogPerTask: num('per-task', 1),
  targetWaitSeconds: num('target-wait', 0),
  loadWindowSeconds: num('load-window', 60),
  demandWindowPeriods: num('window', 1),
  minTasks: num('min-tasks', 0),
  maxTasks: num('max-tasks', 1),
};
const startup = num('startup', 0);
const oracle = { intervalSeconds: 300, targetWaitSeconds: num('oracle-target', 1), maxTasks: policy.maxTasks };

const jobs = generateTraffic(traffic);
const p = summarize(jobs, simulatePolicy(jobs, policy, startup));
const o = summarize(jobs, simulateOracle(jobs, oracle));

const pro = jobs.filter((j) => j.plan === 'pro').length;
console.log(
  `day: ${jobs.length} jobs (${pro} Pro, ${jobs.length - pro} Free), seed ${traffic.seed}, peak ${traffic.peakRate} jobs/s, ` +
    `bursts ${traffic.bursts.map(([h, m, f]) => `${h}h+${m}min×${f}`).join(', ')}`,
);
console.log(
  `policy: Erlang C on the last ${policy.loadWindowSeconds} s, P(wait > ${policy.targetWaitSeconds} s) ≤ ${policy.waitTail * 100} %, ` +
    `≥ 1 task per ${policy.backlogPerTask} queued, demand window ${policy.demandWindowPeriods}×${policy.periodSeconds} s, ` +
    `tasks ${policy.minTasks}–${policy.maxTasks}, GPU start-up ${startup} s; ` +
    `oracle: Erlang C per ${oracle.intervalSeconds / 60} min, P(wait > ${oracle.targetWaitSeconds} s) ≤ 5 %, instant GPUs`,
);
const row = (name: string, s: Summary) =>
  `| ${name} | ${s.p95.toFixed(1)} | ${s.p95Pro.toFixed(1)} | ${s.p95Free.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.gpuHours.toFixed(2)} | ${s.peakTasks} | ${s.launches} | ${s.scaleToZeroEvents} |`;
console.log(
  '| fleet | p95 wait s | p95 Pro s | p95 Free s | p99 wait s | GPU-hours | peak tasks | launches | to zero |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
console.log(row('scaling policy', p));
console.log(row('Erlang-C oracle', o));
const waitRatio = p.p95 / o.p95;
const hoursRatio = p.gpuHours / o.gpuHours;
console.log(
  `p95 wait ratio ${waitRatio.toFixed(2)} (goal ≤ 1.3), GPU-hours ratio ${hoursRatio.toFixed(2)} (goal ≤ 1.2), ` +
    `Pro p95 ${p.p95Pro < p.p95Free ? 'below' : 'NOT below'} Free p95`,
);
if (p.unserved || o.unserved) console.log(`unserved jobs: policy ${p.unserved}, oracle ${o.unserved}`);
