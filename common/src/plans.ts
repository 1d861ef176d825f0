import { z } from 'zod';

export const PLAN_IDS = ['free', 'pro'] as const;
export const PlanId = z.enum(PLAN_IDS);
export type PlanId = z.infer<typeof PlanId>;

export interface Plan {
  id: PlanId;
  name: string;
  /** Unit: cloud images per period. Local generations never count. */
  monthlyImages: number;
  /** How the period is counted: calendar month (UTC) for free, the Stripe billing period for pro. */
  period: 'calendar_month' | 'billing_period';
  /** Higher runs first in the cloud queue. */
  queuePriority: number;
  /** Unit: generations that may be queued or running at once. */
  concurrentJobs: number;
  /** Unit: pixels on the longer side of one image. */
  maxResolution: number;
  /** Unit: images per batch request. */
  maxCount: number;
  /** Unit: bytes of synced gallery storage. */
  storageBytes: number;
  /** Unit: US cents per month. */
  priceCents: number;
}

const GiB = 1024 ** 3;

export const PLANS: Readonly<Record<PlanId, Plan>> = {
  free: {
    id: 'free',
    name: 'Free',
    monthlyImages: 100,
    period: 'calendar_month',
    queuePriority: 0,
    concurrentJobs: 2,
    maxResolution: 1024,
    maxCount: 4,
    storageBytes: 2 * GiB,
    priceCents: 0,
  },
  pro: {
    id: 'pro',
    name: 'Pro',
    monthlyImages: 1000,
    period: 'billing_period',
    queuePriority: 10,
    concurrentJobs: 8,
    maxResolution: 2048,
    maxCount: 16,
    storageBytes: 100 * GiB,
    priceCents: 1200,
  },
};

export const PlanSchema = z.object({
  id: PlanId,
  name: z.string(),
  monthlyImages: z.number().int(),
  period: z.enum(['calendar_month', 'billing_period']),
  queuePriority: z.number().int(),
  concurrentJobs: z.number().int(),
  maxResolution: z.number().int(),
  maxCount: z.number().int(),
  storageBytes: z.number().int(),
  priceCents: z.number().int(),
});

export type PlanRequirement =
  | { ok: true }
  | { ok: false; reason: 'resolution' | 'count' | 'concurrency'; requiredPlan: PlanId | null; message: string };

/** The cheapest plan that satisfies a predicate, or null if none does. */
function cheapestPlan(pred: (p: Plan) => boolean): PlanId | null {
  return PLAN_IDS.map((id) => PLANS[id]).find(pred)?.id ?? null;
}

/**
 * Whether a request fits a plan, before anything is reserved. Pure: the caller passes the
 * number of the user's generations currently queued or running.
 */
export function checkPlanAllows(
  planId: PlanId,
  request: { width: number; height: number; count: number },
  activeJobs: number,
): PlanRequirement {
  const plan = PLANS[planId];
  const side = Math.max(request.width, request.height);
  if (side > plan.maxResolution) {
    const requiredPlan = cheapestPlan((p) => p.maxResolution >= side);
    return {
      ok: false,
      reason: 'resolution',
      requiredPlan,
      message: `${side}px images need the ${requiredPlan ? PLANS[requiredPlan].name : 'a higher'} plan (${plan.name} allows up to ${plan.maxResolution}px).`,
    };
  }
  if (request.count > plan.maxCount) {
    const requiredPlan = cheapestPlan((p) => p.maxCount >= request.count);
    return {
      ok: false,
      reason: 'count',
      requiredPlan,
      message: `Batches of ${request.count} need the ${requiredPlan ? PLANS[requiredPlan].name : 'a higher'} plan (${plan.name} allows ${plan.maxCount}).`,
    };
  }
  if (activeJobs >= plan.concurrentJobs) {
    const requiredPlan = cheapestPlan((p) => p.concurrentJobs > activeJobs);
    return {
      ok: false,
      reason: 'concurrency',
      requiredPlan,
      message: `${plan.name} runs ${plan.concurrentJobs} cloud jobs at once; wait for one to finish${requiredPlan ? ` or upgrade to ${PLANS[requiredPlan].name}` : ''}.`,
    };
  }
  return { ok: true };
}

/** The calendar month (UTC) containing `at`: the free plan's usage period. */
export function calendarMonthUtc(at: Date): { start: Date; end: Date } {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  const end = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
  return { start, end };
}
