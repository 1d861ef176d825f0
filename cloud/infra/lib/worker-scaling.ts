/**
 * The GPU worker fleet's scaling policy: one module, used by the CDK stack (atelier-stack.ts turns
 * it into step scaling on the `WorkerDemand` metric), by the queue-metrics sidecar that computes
 * that metric, and by the simulator (`npm run sim:autoscale`, cloud/infra/sim), so what is
 * simulated is what is deployed.
 *
 * Every period the sidecar reads the queue: jobs created and the mean run time of jobs finished in
 * the last `loadWindowSeconds`, and the jobs queued and running now. wantedTasks() sizes the fleet
 * with Erlang C for that arrival rate and service time (at most `waitTail` of jobs waiting longer
 * than `targetWaitSeconds`), never below what the queue itself needs. The published demand is the
 * largest wanted size of the last `demandWindowPeriods` periods, and the worker service is set to
 * exactly that many tasks: the fleet grows on the first period that needs it and shrinks only after
 * a whole window of lower load — a GPU host takes minutes to start. A window with no job at all
 * wants zero tasks, and the fleet scales to zero.
 */

/** One step of a step scaling policy (the shape of aws-cdk-lib's ScalingInterval, which this file
 * does not import: the API image runs it in the queue-metrics sidecar without aws-cdk-lib). */
export interface ScalingStep {
  lower?: number;
  upper?: number;
  change: number;
}

export interface WorkerScalingPolicy {
  /** Queued jobs one worker task should clear before another starts (a floor under the load sizing). Unit: jobs. */
  backlogPerTask: number;
  /** Tasks kept with an empty queue; 0 = scale to zero. */
  minTasks: number;
  /** Also the GPU host maximum (one task per GPU host). */
  maxTasks: number;
  /** How often the queue is sampled and the scaling alarm evaluated. Unit: seconds. */
  periodSeconds: number;
  /** Arrivals and service times are measured over this trailing window. Unit: seconds. */
  loadWindowSeconds: number;
  /** The fleet is sized so that at most `waitTail` of jobs wait longer than this (Erlang C). Unit: seconds. */
  targetWaitSeconds: number;
  waitTail: number;
  /** Used before any job of the window has finished. Unit: seconds of GPU time per job. */
  defaultServiceSeconds: number;
  /** The demand metric is the largest wanted size of this many recent periods: scale-in waits this long. */
  demandWindowPeriods: number;
  /** Between two scaling actions. Unit: seconds. */
  cooldownSeconds: number;
}

export const DEFAULT_WORKER_SCALING: Readonly<WorkerScalingPolicy> = {
  backlogPerTask: 8,
  minTasks: 0,
  maxTasks: 4,
  periodSeconds: 60,
  loadWindowSeconds: 300,
  targetWaitSeconds: 20,
  waitTail: 0.05,
  defaultServiceSeconds: 2,
  demandWindowPeriods: 8,
  cooldownSeconds: 60,
};

/** What the queue-metrics sidecar reads each period (cloud/infra/queue-metrics/backlog.ts). */
export interface QueueLoad {
  /** Jobs created in the last loadWindowSeconds. */
  arrivals: number;
  /** Mean run time of jobs completed in the window; null when none completed. Unit: seconds. */
  meanServiceSeconds: number | null;
  /** Jobs waiting now. */
  queued: number;
  /** Jobs running now. */
  running: number;
}

/** Erlang C: the probability that an arrival waits in M/M/c with offered load a = λ/μ. */
export function erlangC(c: number, a: number): number {
  if (a <= 0) return 0;
  if (a >= c) return 1;
  let b = 1; // Erlang B by its stable recursion, then C from B.
  for (let k = 1; k <= c; k++) b = (a * b) / (k + a * b);
  return b / (1 - (a / c) * (1 - b));
}

/** P(wait > t) in M/M/c: C(c, a) · e^(−(cμ − λ)t). */
export function erlangWaitTail(c: number, lambda: number, mu: number, t: number): number {
  const a = lambda / mu;
  if (a >= c) return 1;
  return erlangC(c, a) * Math.exp(-(c * mu - lambda) * t);
}

/** The smallest fleet with P(wait > target) ≤ tail, within [1, max]; 0 when nothing arrives. */
export function erlangFleet(lambda: number, mu: number, targetSeconds: number, tail: number, max: number): number {
  if (lambda <= 0) return 0;
  for (let c = 1; c <= max; c++) if (erlangWaitTail(c, lambda, mu, targetSeconds) <= tail) return c;
  return max;
}

/**
 * The fleet this period's load wants: Erlang C on the window's arrival rate and mean service
 * time, and at least enough tasks to clear what is queued (backlogPerTask each) and to keep every
 * running job on a task. This is the value the sidecar publishes as `WorkerDemand`'s input.
 */
export function wantedTasks(load: QueueLoad, p: WorkerScalingPolicy): number {
  const lambda = load.arrivals / p.loadWindowSeconds;
  const service = load.meanServiceSeconds ?? p.defaultServiceSeconds;
  const byLoad = erlangFleet(lambda, 1 / Math.max(service, 1e-3), p.targetWaitSeconds, p.waitTail, p.maxTasks);
  const byQueue = Math.ceil(load.queued / p.backlogPerTask);
  return Math.min(p.maxTasks, Math.max(byLoad, byQueue, load.running > 0 ? 1 : 0));
}

/**
 * Not deployed, assumed by the simulator: from a scale-out decision to a worker taking jobs — EC2
 * GPU instance boot, ECS agent registration, model sync from S3 and the worker image pull.
 * Unit: seconds.
 */
export const GPU_HOST_STARTUP_SECONDS = 240;

/** The demand metric: the largest wanted size of the most recent periods (oldest first). */
export function demandOf(wanted: readonly number[], p: Pick<WorkerScalingPolicy, 'demandWindowPeriods'>): number {
  const window = wanted.slice(-p.demandWindowPeriods);
  return window.length ? Math.max(...window) : 0;
}

/** The task count the scaling policy sets for a demand value. */
export function desiredTasks(demand: number, p: WorkerScalingPolicy): number {
  return Math.min(p.maxTasks, Math.max(p.minTasks, Math.ceil(Math.max(0, demand))));
}

/**
 * Step scaling intervals (ExactCapacity) equivalent to desiredTasks on the integer demand metric:
 * 0 → 0 tasks, 1 → 1, …, maxTasks or more → maxTasks. minTasks is the scalable target's minimum.
 */
export function scalingSteps(p: WorkerScalingPolicy): ScalingStep[] {
  const steps: ScalingStep[] = [{ upper: 0, change: 0 }];
  for (let n = 1; n <= p.maxTasks; n++)
    steps.push({ lower: n, ...(n < p.maxTasks ? { upper: n + 1 } : {}), change: n });
  return steps;
}
