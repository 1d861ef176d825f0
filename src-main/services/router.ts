/**
 * Where a generation runs. A pure decision over facts the caller gathers (providers, installed
 * models, account, quota, connectivity), so every rule is a row in a table test.
 *
 * auto: local when a GPU provider is usable and the model is installed; otherwise the cloud when
 * signed in, online and with quota left; otherwise local on the CPU with a speed warning.
 */
import type { ErrorCode, PlanId, RouteDecision, RunTarget } from '@atelier/common';
import { PLANS } from '@atelier/common';

export interface ProviderFact {
  name: string;
  usable: boolean;
  gpu: boolean;
}

export interface RouteFacts {
  requested: RunTarget;
  /** Images the request makes (its `count`). */
  count: number;
  providers: ProviderFact[];
  /** Whether the model the request names (or the default) is installed locally. */
  modelInstalled: boolean;
  signedIn: boolean;
  online: boolean;
  plan: PlanId | null;
  /** Cloud images used and allowed this period; null when unknown (signed out or not fetched). */
  quota: { used: number; limit: number } | null;
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

function local(facts: RouteFacts, reason: string): RouteOutcome {
  const gpu = facts.providers.find((p) => p.usable && p.gpu);
  const cpu = facts.providers.find((p) => p.usable && !p.gpu);
  const provider = gpu ?? cpu ?? null;
  if (!provider)
    return {
      decision: { target: 'local', provider: null, reason, warning: 'No execution provider can run here.', cost: null },
      blocked: 'ENGINE_PROVIDER_UNAVAILABLE',
      waitOnline: false,
    };
  if (!facts.modelInstalled)
    return {
      decision: {
        target: 'local',
        provider: provider.name,
        reason,
        warning: 'The model is not installed on this computer. Install it in Settings → Models.',
        cost: null,
      },
      blocked: 'ENGINE_MODEL_NOT_FOUND',
      waitOnline: false,
    };
  return {
    decision: { target: 'local', provider: provider.name, reason, warning: gpu ? null : CPU_WARNING, cost: null },
    blocked: null,
    waitOnline: false,
  };
}

function cloud(facts: RouteFacts, reason: string): RouteOutcome {
  const base = { target: 'cloud' as const, provider: null, reason };
  if (!facts.signedIn)
    return {
      decision: { ...base, warning: 'Sign in to run in the cloud.', cost: null },
      blocked: 'AUTH_REQUIRED',
      waitOnline: false,
    };
  const left = facts.quota ? facts.quota.limit - facts.quota.used : null;
  if (left !== null && left < facts.count)
    return {
      decision: {
        ...base,
        warning: `You have ${Math.max(0, left)} cloud image${left === 1 ? '' : 's'} left this period. Upgrade for more.`,
        cost: null,
      },
      blocked: 'QUOTA_EXCEEDED',
      waitOnline: false,
    };
  const cost = facts.quota ? costLine(facts.count, facts.quota, facts.plan) : null;
  if (!facts.online)
    return {
      decision: { ...base, warning: 'You are offline: the job will be sent when you are back online.', cost },
      blocked: null,
      waitOnline: true,
    };
  return { decision: { ...base, warning: null, cost }, blocked: null, waitOnline: false };
}

export function decideRoute(facts: RouteFacts): RouteOutcome {
  if (facts.requested === 'local') return local(facts, 'You chose to run on this computer.');
  if (facts.requested === 'cloud') return cloud(facts, 'You chose to run in Atelier Cloud.');

  const gpu = facts.providers.find((p) => p.usable && p.gpu);
  if (gpu && facts.modelInstalled) return local(facts, `Your GPU (${gpu.name}) can run this model.`);
  const left = facts.quota ? facts.quota.limit - facts.quota.used : 0;
  if (facts.signedIn && facts.online && facts.quota && left >= facts.count) {
    const why = !gpu ? 'No usable GPU on this computer' : 'The model is not installed on this computer';
    return cloud(facts, `${why}, so it runs in Atelier Cloud.`);
  }
  const why = !facts.signedIn
    ? 'sign in to use Atelier Cloud'
    : !facts.online
      ? 'you are offline'
      : 'no cloud images are left this period';
  return local(facts, gpu ? `Runs on this computer (${why}).` : `No usable GPU and ${why}, so it runs on the CPU.`);
}
