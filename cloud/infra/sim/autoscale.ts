/**
 * A day of generation traffic replayed against the GPU fleet's scaling policy
 * (lib/worker-scaling.ts, the module the CDK stack deploys) and against an Erlang-C-sized oracle
 * fleet that knows the arrival rate in advance and starts GPUs instantly.
 *
 * The model, event by event (seeded, so every run with the same options prints the same figures):
 * - Arrivals: a non-homogeneous Poisson process — a diurnal curve (quiet night, afternoon peak)
 *   plus short bursts — each job Free or Pro, with 1, 2 or 4 images of 256² (20 steps) or 512²
 *   (25 steps), per-image times from `npm run bench:cloud` (docs/BENCHMARKS.md).
 * - Queue: Pro jobs before Free jobs, first come first served within a plan (pg-boss priority).
 * - Workers: one job at a time per task (WORKER_CONCURRENCY 1, one GPU per task).
 * - Policy fleet: every period the queue's load is read as the sidecar reads it (arrivals and mean
 *   run time of the trailing window, queued and running now); the task count is set to
 *   desiredTasks(demandOf(wantedTasks(…) of recent periods)); a new task takes jobs after
 *   GPU_HOST_STARTUP_SECONDS; a task told to stop finishes its job first. Pays from launch to stop.
 * - Oracle fleet: every `oracleIntervalSeconds` it holds the smallest fleet for which Erlang C
 *   (M/M/c with the true mean arrival rate and mean service time of the interval) gives
 *   P(wait > oracleTargetWaitSeconds) ≤ 5 %, capped at maxTasks, ≥ 1 while any job arrives; its
 *   GPUs are there the moment it wants them.
 */
import {
  demandOf,
  desiredTasks,
  erlangFleet,
  GPU_HOST_STARTUP_SECONDS,
  wantedTasks,
  type QueueLoad,
  type WorkerScalingPolicy,
} from '../lib/worker-scaling.ts';

export type Plan = 'free' | 'pro';

export interface Job {
  id: number;
  plan: Plan;
  /** Unit: seconds since midnight. */
  arrival: number;
  /** Unit: seconds of GPU time. */
  service: number;
}

export interface TrafficOptions {
  seed: number;
  /** Mean arrivals at the afternoon peak. Unit: jobs per second. */
  peakRate: number;
  /** The night's rate as a fraction of the peak. */
  nightFraction: number;
  /** Share of jobs from Pro users. */
  proShare: number;
  /** Bursts: [start hour, minutes, rate multiplier]. */
  bursts: readonly (readonly [number, number, number])[];
  /** Per-image GPU seconds by size (bench:cloud). */
  imageSeconds: { small: number; large: number };
}

/**
 * Per-image times measured by `npm run bench:cloud` on the quiet machine (docs/BENCHMARKS.md,
 * "Cloud generation"): 512² × 25 steps at 1.743 images/s, 256² × 20 steps at 6.213 images/s.
 */
export const BENCH_CLOUD_IMAGE_SECONDS = { large: 1 / 1.743, small: 1 / 6.213 } as const;

export const DEFAULT_TRAFFIC: TrafficOptions = {
  seed: 14,
  peakRate: 1.2,
  nightFraction: 0.0005,
  proShare: 0.2,
  bursts: [
    [10.5, 8, 2.5],
    [17, 12, 2],
    [21.25, 6, 3],
  ],
  imageSeconds: BENCH_CLOUD_IMAGE_SECONDS,
};

export const DAY_SECONDS = 24 * 3600;

/** mulberry32: a small seeded PRNG (deterministic across platforms). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Arrival rate at time t (jobs/s): a cosine day peaking at 16:00, lowest at 04:00, plus bursts. */
export function arrivalRate(t: number, o: TrafficOptions): number {
  const hour = t / 3600;
  const day = (1 - Math.cos((2 * Math.PI * (hour - 4)) / 24)) / 2; // 0 at 04:00, 1 at 16:00
  let rate = o.peakRate * (o.nightFraction + (1 - o.nightFraction) * day ** 2);
  for (const [start, minutes, factor] of o.bursts) if (hour >= start && hour < start + minutes / 60) rate *= factor;
  return rate;
}

/** One day of jobs, by thinning a Poisson process at the maximum rate. */
export function generateTraffic(o: TrafficOptions = DEFAULT_TRAFFIC): Job[] {
  const rand = prng(o.seed);
  const maxFactor = Math.max(1, ...o.bursts.map((b) => b[2]));
  const lambdaMax = o.peakRate * maxFactor;
  const jobs: Job[] = [];
  let t = 0;
  for (;;) {
    t += -Math.log(1 - rand()) / lambdaMax;
    if (t >= DAY_SECONDS) break;
    if (rand() * lambdaMax > arrivalRate(t, o)) continue;
    const plan: Plan = rand() < o.proShare ? 'pro' : 'free';
    const images = [1, 2, 4][Math.floor(rand() * 3)]!;
    // Pro users pick the large size more often.
    const large = rand() < (plan === 'pro' ? 0.7 : 0.5);
    const perImage = large ? o.imageSeconds.large : o.imageSeconds.small;
    // ±15 % around the measured time (prompt length, scheduler, machine noise).
    const jitter = 0.85 + 0.3 * rand();
    jobs.push({ id: jobs.length, plan, arrival: t, service: images * perImage * jitter });
  }
  return jobs;
}

export interface FleetResult {
  /** Queue wait of each job (start − arrival), by job id. Unit: seconds. */
  waits: Float64Array;
  /** GPU time paid for, start-up included. Unit: hours. */
  gpuHours: number;
  /** Largest number of tasks at once. */
  peakTasks: number;
  /** Times the fleet went from some tasks to none. */
  scaleToZeroEvents: number;
  /** Tasks launched over the day. */
  launches: number;
}

interface Task {
  /** When it can take jobs. */
  readyAt: number;
  launchedAt: number;
  busyUntil: number;
  stopping: boolean;
}

/**
 * Discrete-event run of one day. `target(now, backlogSamples)` returns the task count the fleet
 * wants at each decision time; new tasks take `startup` seconds to become ready.
 */
function runFleet(
  jobs: readonly Job[],
  decisionEvery: number,
  startup: number,
  target: (now: number, load: (windowSeconds: number) => QueueLoad) => number,
): FleetResult {
  const waits = new Float64Array(jobs.length).fill(Number.NaN);
  const tasks: Task[] = [];
  const queue = { pro: [] as Job[], free: [] as Job[] };
  const qHead = { pro: 0, free: 0 };
  /** [completion time, service] of dispatched jobs, in dispatch order. */
  const completions: [number, number][] = [];
  let next = 0; // next arrival index
  let paidSeconds = 0;
  let peakTasks = 0;
  let scaleToZeroEvents = 0;
  let launches = 0;
  const queued = () => queue.pro.length - qHead.pro + (queue.free.length - qHead.free);
  const take = (): Job | undefined => {
    if (qHead.pro < queue.pro.length) return queue.pro[qHead.pro++];
    if (qHead.free < queue.free.length) return queue.free[qHead.free++];
    return undefined;
  };

  // Dispatch jobs to ready, idle tasks in time order until `until`.
  let clock = 0;
  const advance = (until: number) => {
    for (;;) {
      // The next event: an arrival, or a task becoming free/ready with work queued.
      const nextArrival = next < jobs.length ? jobs[next]!.arrival : Infinity;
      let nextFree = Infinity;
      let freeTask: Task | undefined;
      if (queued() > 0)
        for (const task of tasks) {
          if (task.stopping) continue;
          const at = Math.max(task.readyAt, task.busyUntil, clock);
          if (at < nextFree) {
            nextFree = at;
            freeTask = task;
          }
        }
      const t = Math.min(nextArrival, nextFree);
      if (t >= until) {
        clock = Math.max(clock, until);
        return;
      }
      clock = t;
      if (nextFree <= nextArrival && freeTask) {
        const job = take()!;
        waits[job.id] = nextFree - job.arrival;
        freeTask.busyUntil = nextFree + job.service;
        completions.push([freeTask.busyUntil, job.service]);
      } else {
        const job = jobs[next++]!;
        queue[job.plan].push(job);
      }
    }
  };

  let lastNow = 0;
  for (let now = 0; now < DAY_SECONDS + 6 * 3600; now += decisionEvery) {
    lastNow = now;
    advance(now);
    // Stopping tasks leave once their job is done (they were told with SIGTERM).
    for (let i = tasks.length - 1; i >= 0; i--) {
      const task = tasks[i]!;
      if (task.stopping && task.busyUntil <= now) {
        paidSeconds += Math.max(task.busyUntil, task.launchedAt) - task.launchedAt;
        tasks.splice(i, 1);
      }
    }
    const load = (windowSeconds: number): QueueLoad => {
      let arrivals = 0;
      for (let i = next - 1; i >= 0 && jobs[i]!.arrival > now - windowSeconds; i--) arrivals++;
      let sum = 0;
      let done = 0;
      // Jobs run for seconds, so completions are nearly in dispatch order: scan back past the window with slack.
      for (let i = completions.length - 1; i >= 0; i--) {
        const [at, service] = completions[i]!;
        if (at < now - windowSeconds - 3600) break;
        if (at <= now && at > now - windowSeconds) {
          sum += service;
          done++;
        }
      }
      return {
        arrivals,
        meanServiceSeconds: done ? sum / done : null,
        queued: queued(),
        // Busy tasks, including those told to stop that still finish a job.
        running: tasks.filter((x) => x.busyUntil > now).length,
      };
    };
    const active = tasks.filter((x) => !x.stopping);
    const want = target(now, load);
    if (want > active.length) {
      for (let k = active.length; k < want; k++) {
        tasks.push({ readyAt: now + startup, launchedAt: now, busyUntil: 0, stopping: false });
        launches++;
      }
    } else if (want < active.length) {
      // Idle tasks go first, then those still starting, then busy ones (which finish their job).
      const order = [...active].sort((a, b) => rank(a, now) - rank(b, now));
      for (const task of order.slice(0, active.length - want)) {
        task.stopping = true;
        if (task.busyUntil <= now) task.busyUntil = now;
      }
      if (want === 0 && active.length > 0) scaleToZeroEvents++;
    }
    peakTasks = Math.max(peakTasks, tasks.filter((x) => !x.stopping).length);
    if (now >= DAY_SECONDS && next >= jobs.length && queued() === 0 && tasks.every((x) => x.stopping)) break;
  }
  for (const task of tasks)
    paidSeconds += (task.stopping ? Math.max(task.busyUntil, task.launchedAt) : lastNow) - task.launchedAt;
  return { waits, gpuHours: paidSeconds / 3600, peakTasks, scaleToZeroEvents, launches };
}

function rank(task: Task, now: number): number {
  if (task.readyAt > now) return 1; // still starting
  return task.busyUntil <= now ? 0 : 2;
}

export function simulatePolicy(
  jobs: readonly Job[],
  policy: WorkerScalingPolicy,
  startupSeconds = GPU_HOST_STARTUP_SECONDS,
): FleetResult {
  let lastAction = -Infinity;
  let current = policy.minTasks;
  const wanted: number[] = [];
  return runFleet(jobs, policy.periodSeconds, startupSeconds, (now, load) => {
    wanted.push(wantedTasks(load(policy.loadWindowSeconds), policy));
    const want = desiredTasks(demandOf(wanted, policy), policy);
    if (want !== current && now - lastAction >= policy.cooldownSeconds) {
      current = want;
      lastAction = now;
    }
    return current;
  });
}

export interface OracleOptions {
  intervalSeconds: number;
  targetWaitSeconds: number;
  maxTasks: number;
}

/** The oracle's fleet size per interval, from the true arrivals and service times of the interval. */
export function oracleSizes(jobs: readonly Job[], o: OracleOptions): number[] {
  const n = Math.ceil(DAY_SECONDS / o.intervalSeconds);
  const count = new Array<number>(n).fill(0);
  const work = new Array<number>(n).fill(0);
  for (const j of jobs) {
    const i = Math.min(n - 1, Math.floor(j.arrival / o.intervalSeconds));
    count[i]!++;
    work[i]! += j.service;
  }
  return count.map((c, i) =>
    c === 0 ? 0 : erlangFleet(c / o.intervalSeconds, c / work[i]!, o.targetWaitSeconds, 0.05, o.maxTasks),
  );
}

export function simulateOracle(jobs: readonly Job[], o: OracleOptions): FleetResult {
  const sizes = oracleSizes(jobs, o);
  return runFleet(jobs, o.intervalSeconds, 0, (now) => {
    const i = Math.floor(now / o.intervalSeconds);
    return i < sizes.length ? sizes[i]! : 0;
  });
}

/** The p-th percentile (0–100) of the finite values, nearest-rank. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const xs = Array.from(values)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  if (!xs.length) return Number.NaN;
  const rankIndex = Math.max(0, Math.ceil((p / 100) * xs.length) - 1);
  return xs[rankIndex]!;
}

export interface Summary {
  jobs: number;
  p95: number;
  p95Pro: number;
  p95Free: number;
  p99: number;
  mean: number;
  gpuHours: number;
  peakTasks: number;
  launches: number;
  scaleToZeroEvents: number;
  unserved: number;
}

export function summarize(jobs: readonly Job[], r: FleetResult): Summary {
  const of = (plan?: Plan) => jobs.filter((j) => !plan || j.plan === plan).map((j) => r.waits[j.id]!);
  const all = of();
  const finite = all.filter((w) => Number.isFinite(w));
  return {
    jobs: jobs.length,
    p95: percentile(all, 95),
    p95Pro: percentile(of('pro'), 95),
    p95Free: percentile(of('free'), 95),
    p99: percentile(all, 99),
    mean: finite.reduce((s, w) => s + w, 0) / Math.max(1, finite.length),
    gpuHours: r.gpuHours,
    peakTasks: r.peakTasks,
    launches: r.launches,
    scaleToZeroEvents: r.scaleToZeroEvents,
    unserved: all.length - finite.length,
  };
}
