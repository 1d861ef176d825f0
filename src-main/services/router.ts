/**
 * Where a generation runs. A pure decision over facts the caller gathers (providers, installed
 * models, account, quota, plan, memory, connectivity), so every rule is a row in a table test.
 *
 * auto: local when a GPU provider is usable, the model is installed and the job fits in memory;
 * otherwise the cloud when signed in, online, with quota left, the model on the plan — and the
 * person has allowed Automatic to use metered cloud runs (asked once, remembered); otherwise
 * local on the CPU with a speed warning.
 *
 * Every refusal is decided here, before the click: the decision carries the code the submit
 * would be refused with (`blocked`) and the one-click way out (`action`).
 */
import type { ErrorCode, MemoryEstimate, PlanId, RouteDecision, RunTarget } from '@atelier/common';
import { checkPlanAllows, PLANS } from '@atelier/common';

export interface ProviderFact {
  name: string;
  usable: boolean;
  gpu: boolean;
}

export interface RouteFacts {
  requested: RunTarget;
  /** Images the request makes (its `count`). */
  count: number;
  /** Unit: pixels; null when the caller does not know the size yet. */
  size?: { width: number; height: number } | null;
  providers: ProviderFact[];
  /** Whether the model the request names (or the default) is installed locally. */
  modelInstalled: boolean;
  signedIn: boolean;
  online: boolean;
  plan: PlanId | null;
  /** Cloud images used and allowed this period; null when unknown (signed out or not fetched). */
  quota: { used: number; limit: number } | null;
  /**
   * The requested model as the cloud sees it: null when the request uses the cloud's default or the
   * catalogue is unknown; otherwise its name and the plans that include it.
   */
  cloudModel?: { name: string; plans: PlanId[] } | null;
  /** Whether Automatic may send runs to the metered cloud ('ask' until the person answers). */
  autoCloud?: 'ask' | 'allow' | 'never';
  /** The engine's memory check for running this job here; null when not known. */
  memory?: MemoryEstimate | null;
}

export interface RouteOutcome {
  decision: RouteDecision;
  /** Set when the job cannot be accepted as decided: the code to answer with. */
  blocked: ErrorCode | null;
  /** A cloud job accepted while offline waits and is sent when back online. */
  waitOnline: boolean;
}

const CPU_WARNING = 'No usable GPU: running on the CPU is slow (it can take minutes per image).';

export function costLine(count: number, quota: { used: number; limit: number }, plan: PlanId | null): string {
  const left = Math.max(0, quota.limit - quota.used);
  const period = plan && PLANS[plan].period === 'billing_period' ? 'this billing period' : 'this month';
  return `uses ${count} of your ${left} cloud image${left === 1 ? '' : 's'} left ${period}`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

type Base = Pick<RouteDecision, 'target' | 'provider' | 'reason'>;
function decision(base: Base, rest: Partial<Omit<RouteDecision, keyof Base>>): RouteDecision {
  return { warning: null, cost: null, blocked: null, action: null, askCloud: false, memory: null, ...base, ...rest };
}
function outcome(d: RouteDecision, waitOnline = false): RouteOutcome {
  return { decision: d, blocked: (d.blocked as ErrorCode | null) ?? null, waitOnline };
}

/** Whether this computer could run the job at all (a provider, the model, enough memory). */
function localPossible(facts: RouteFacts): boolean {
  return facts.providers.some((p) => p.usable) && facts.modelInstalled && (facts.memory?.verdict ?? 'ok') !== 'refuse';
}

/** Why the cloud cannot take this job, or null when it can (signed in, quota, plan). Offline still queues. */
function cloudRefusal(facts: RouteFacts): { code: ErrorCode; warning: string } | null {
  if (!facts.signedIn) return { code: 'AUTH_REQUIRED', warning: 'Sign in to run in the cloud.' };
  const plan = facts.plan;
  if (plan && facts.cloudModel && !facts.cloudModel.plans.includes(plan)) {
    const needed = facts.cloudModel.plans.map((p) => PLANS[p].name);
    return {
      code: 'PLAN_REQUIRED',
      warning: `${facts.cloudModel.name} is not on the ${PLANS[plan].name} plan${needed.length ? ` (it needs ${needed.join(' or ')})` : ''}. Choose the default model for cloud runs, or upgrade.`,
    };
  }
  if (plan) {
    // The size is checked when known; the batch size always.
    const allowed = checkPlanAllows(plan, { width: 0, height: 0, ...facts.size, count: facts.count }, 0);
    if (!allowed.ok) return { code: 'PLAN_REQUIRED', warning: allowed.message };
  }
  const left = facts.quota ? Math.max(0, facts.quota.limit - facts.quota.used) : null;
  if (left !== null && left < facts.count)
    return {
      code: 'QUOTA_EXCEEDED',
      warning:
        left === 0
          ? `You have used all ${plural(facts.quota!.limit, 'cloud image')} of this period.`
          : `This run makes ${plural(facts.count, 'image')} and you have ${plural(left, 'cloud image')} left this period. Ask for ${left} or fewer, or run it on this computer.`,
    };
  return null;
}

function local(facts: RouteFacts, reason: string): RouteOutcome {
  const gpu = facts.providers.find((p) => p.usable && p.gpu);
  const cpu = facts.providers.find((p) => p.usable && !p.gpu);
  const provider = gpu ?? cpu ?? null;
  const base = { target: 'local' as const, provider: provider?.name ?? null, reason };
  const cloudOk = cloudRefusal(facts) === null;
  if (!provider)
    return outcome(
      decision(base, {
        warning: 'No execution provider can run here.',
        blocked: 'ENGINE_PROVIDER_UNAVAILABLE',
        action: cloudOk ? 'run_cloud' : null,
      }),
    );
  if (!facts.modelInstalled)
    return outcome(
      decision(base, {
        warning: 'The model is not installed on this computer. Install it in Settings → Models.',
        blocked: 'ENGINE_MODEL_NOT_FOUND',
        action: cloudOk ? 'run_cloud' : 'install_model',
      }),
    );
  const memory = facts.memory ?? null;
  if (memory?.verdict === 'refuse')
    return outcome(
      decision(base, {
        warning: memory.message ?? 'This job needs more memory than this computer has. Make it smaller.',
        blocked: 'ENGINE_MEMORY_INSUFFICIENT',
        action: cloudOk ? 'run_cloud' : null,
        memory,
      }),
    );
  const warnings = [gpu ? null : CPU_WARNING, memory?.verdict === 'warn' ? memory.message : null].filter(Boolean);
  return outcome(decision(base, { warning: warnings.length ? warnings.join(' ') : null, memory }));
}

function cloud(facts: RouteFacts, reason: string): RouteOutcome {
  const base = { target: 'cloud' as const, provider: null, reason };
  const refusal = cloudRefusal(facts);
  if (refusal)
    return outcome(
      decision(base, {
        warning: refusal.warning,
        blocked: refusal.code,
        action: refusal.code === 'AUTH_REQUIRED' ? 'sign_in' : localPossible(facts) ? 'run_local' : null,
      }),
    );
  const cost = facts.quota ? costLine(facts.count, facts.quota, facts.plan) : null;
  if (!facts.online)
    return outcome(
      decision(base, { warning: 'You are offline: the job will be sent when you are back online.', cost }),
      true,
    );
  return outcome(decision(base, { cost }));
}

export function decideRoute(facts: RouteFacts): RouteOutcome {
  if (facts.requested === 'local') return local(facts, 'You chose to run on this computer.');
  if (facts.requested === 'cloud') return cloud(facts, 'You chose to run in Atelier Cloud.');

  const gpu = facts.providers.find((p) => p.usable && p.gpu);
  const fits = (facts.memory?.verdict ?? 'ok') !== 'refuse';
  if (gpu && facts.modelInstalled && fits) return local(facts, `Your GPU (${gpu.name}) can run this model.`);
  const cloudCan = facts.online && facts.quota !== null && cloudRefusal(facts) === null;
  const autoCloud = facts.autoCloud ?? 'ask';
  const why = !gpu
    ? 'No usable GPU on this computer'
    : !facts.modelInstalled
      ? 'The model is not installed on this computer'
      : 'This job does not fit in this computer’s memory';
  if (cloudCan && autoCloud === 'allow') return cloud(facts, `${why}, so it runs in Atelier Cloud.`);
  if (cloudCan && autoCloud === 'ask') {
    // Signing in must not turn free local runs into metered ones: run here until the person says so.
    const here = local(facts, `${why}. Automatic runs it here until you allow cloud runs.`);
    return { ...here, decision: { ...here.decision, askCloud: true } };
  }
  const whyNot = !facts.signedIn
    ? 'sign in to use Atelier Cloud'
    : !facts.online
      ? 'you are offline'
      : autoCloud === 'never' && cloudCan
        ? 'you chose to keep Automatic runs on this computer'
        : facts.quota && facts.quota.limit - facts.quota.used < facts.count
          ? facts.quota.limit - facts.quota.used <= 0
            ? 'no cloud images are left this period'
            : 'not enough cloud images are left this period'
          : facts.plan && facts.cloudModel && !facts.cloudModel.plans.includes(facts.plan)
            ? `${facts.cloudModel.name} is not on your cloud plan`
            : 'the cloud cannot take this job on your plan';
  return local(
    facts,
    gpu ? `Runs on this computer (${whyNot}).` : `No usable GPU and ${whyNot}, so it runs on the CPU.`,
  );
}
