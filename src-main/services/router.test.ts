import { describe, expect, it } from 'vitest';
import { costLine, decideRoute, type RouteFacts } from './router.ts';

const CPU = { name: 'cpu', usable: true, gpu: false };
const CUDA = { name: 'cuda', usable: true, gpu: true };
const CUDA_BROKEN = { name: 'cuda', usable: false, gpu: true };
const base: RouteFacts = {
  requested: 'auto',
  count: 4,
  providers: [CPU],
  modelInstalled: true,
  signedIn: true,
  online: true,
  plan: 'free',
  quota: { used: 63, limit: 100 },
  autoCloud: 'allow',
};
const FIXTURE_PRO_ONLY = { name: 'SDXL Turbo', plans: ['pro' as const] };
const REFUSE = { verdict: 'refuse' as const, neededBytes: 30e9, availableBytes: 16e9, message: 'needs 30 GB' };
const WARN = { verdict: 'warn' as const, neededBytes: 12e9, availableBytes: 16e9, message: 'tight on memory' };

type Row = [
  string,
  Partial<RouteFacts>,
  {
    target: string;
    provider?: string | null;
    blocked?: string | null;
    warning?: RegExp | null;
    cost?: string | null;
    reason?: RegExp;
    waitOnline?: boolean;
    action?: string | null;
    askCloud?: boolean;
  },
];
const table: Row[] = [
  [
    'auto + GPU + model → local GPU',
    { providers: [CPU, CUDA] },
    { target: 'local', provider: 'cuda', warning: null, blocked: null, reason: /GPU \(cuda\)/ },
  ],
  [
    'auto + broken GPU + signed in with quota → cloud with cost',
    { providers: [CPU, CUDA_BROKEN] },
    { target: 'cloud', cost: 'uses 4 of your 37 cloud images left this month', reason: /No usable GPU/ },
  ],
  [
    'auto + GPU but model missing + quota → cloud',
    { providers: [CUDA], modelInstalled: false },
    { target: 'cloud', reason: /not installed/ },
  ],
  [
    'auto + no GPU + signed out → local CPU with warning',
    { signedIn: false, quota: null },
    { target: 'local', provider: 'cpu', warning: /slow/, reason: /sign in/ },
  ],
  [
    'auto + no GPU + offline → local CPU',
    { online: false },
    { target: 'local', provider: 'cpu', warning: /slow/, reason: /offline/ },
  ],
  [
    'auto + no GPU + quota too small → local CPU',
    { quota: { used: 98, limit: 100 } },
    { target: 'local', warning: /slow/, reason: /not enough cloud images/ },
  ],
  [
    'auto + no GPU + quota used up → local CPU, says none are left',
    { quota: { used: 100, limit: 100 } },
    { target: 'local', warning: /slow/, reason: /no cloud images are left/ },
  ],
  [
    'auto + no GPU + signed in, not asked yet → stays local and asks (never silently metered)',
    { autoCloud: 'ask' },
    { target: 'local', provider: 'cpu', blocked: null, askCloud: true, reason: /until you allow cloud runs/ },
  ],
  [
    'auto + no GPU + signed in, answer unknown (no fact) → asks',
    { autoCloud: undefined },
    { target: 'local', askCloud: true },
  ],
  [
    'auto + no GPU + signed in, said never → local CPU without asking',
    { autoCloud: 'never' },
    { target: 'local', askCloud: false, reason: /keep Automatic runs on this computer/ },
  ],
  [
    'auto + no GPU + model not on the plan → local, says why',
    { cloudModel: FIXTURE_PRO_ONLY },
    { target: 'local', askCloud: false, reason: /SDXL Turbo is not on your cloud plan/ },
  ],
  [
    'auto + GPU + job too big for memory + cloud allowed → cloud',
    { providers: [CUDA], memory: REFUSE },
    { target: 'cloud', reason: /does not fit/ },
  ],
  [
    'local forced + job too big for memory → refused before the click, cloud offered',
    { requested: 'local', memory: REFUSE },
    { target: 'local', blocked: 'ENGINE_MEMORY_INSUFFICIENT', warning: /needs 30 GB/, action: 'run_cloud' },
  ],
  [
    'local forced + job too big, signed out → refused, no cloud offered',
    { requested: 'local', memory: REFUSE, signedIn: false, quota: null },
    { target: 'local', blocked: 'ENGINE_MEMORY_INSUFFICIENT', action: null },
  ],
  [
    'local forced + tight memory → runs with the warning',
    { requested: 'local', providers: [CUDA], memory: WARN },
    { target: 'local', blocked: null, warning: /tight on memory/ },
  ],
  [
    'cloud forced, model not on Free → refused before the click, local offered',
    { requested: 'cloud', cloudModel: FIXTURE_PRO_ONLY },
    {
      target: 'cloud',
      blocked: 'PLAN_REQUIRED',
      warning: /not on the Free plan \(it needs Pro\)/,
      action: 'run_local',
    },
  ],
  [
    'cloud forced, model on Pro for a Pro user → runs',
    { requested: 'cloud', plan: 'pro', cloudModel: FIXTURE_PRO_ONLY, quota: { used: 0, limit: 1000 } },
    { target: 'cloud', blocked: null },
  ],
  [
    'cloud forced, 2048px on Free → refused with the plan limit',
    { requested: 'cloud', count: 1, size: { width: 2048, height: 2048 } },
    { target: 'cloud', blocked: 'PLAN_REQUIRED', warning: /up to 1024px/ },
  ],
  [
    'cloud forced, 4 asked with 2 left → says 2 are left, not "quota reached"',
    { requested: 'cloud', quota: { used: 98, limit: 100 } },
    {
      target: 'cloud',
      blocked: 'QUOTA_EXCEEDED',
      warning: /makes 4 images and you have 2 cloud images left/,
      action: 'run_local',
    },
  ],
  [
    'auto + no GPU + signed out + model missing → blocked',
    { signedIn: false, modelInstalled: false },
    { target: 'local', blocked: 'ENGINE_MODEL_NOT_FOUND' },
  ],
  [
    'local forced with GPU',
    { requested: 'local', providers: [CUDA, CPU] },
    { target: 'local', provider: 'cuda', warning: null },
  ],
  [
    'local forced on CPU warns',
    { requested: 'local' },
    { target: 'local', provider: 'cpu', warning: /slow/, blocked: null },
  ],
  [
    'local forced, no provider usable',
    { requested: 'local', providers: [CUDA_BROKEN] },
    { target: 'local', blocked: 'ENGINE_PROVIDER_UNAVAILABLE' },
  ],
  [
    'cloud forced, signed out',
    { requested: 'cloud', signedIn: false, quota: null },
    { target: 'cloud', blocked: 'AUTH_REQUIRED', warning: /Sign in/, action: 'sign_in' },
  ],
  [
    'cloud forced, over quota',
    { requested: 'cloud', quota: { used: 100, limit: 100 } },
    { target: 'cloud', blocked: 'QUOTA_EXCEEDED', warning: /used all 100 cloud images/, action: 'run_local' },
  ],
  [
    'cloud forced, offline → waits',
    { requested: 'cloud', online: false },
    { target: 'cloud', blocked: null, waitOnline: true, warning: /offline/ },
  ],
  [
    'cloud forced on pro',
    { requested: 'cloud', plan: 'pro', quota: { used: 10, limit: 1000 }, count: 1 },
    { target: 'cloud', cost: 'uses 1 of your 990 cloud images left this billing period' },
  ],
];

describe('decideRoute', () => {
  it.each(table)('%s', (_name, facts, want) => {
    const out = decideRoute({ ...base, ...facts });
    expect(out.decision.target).toBe(want.target);
    if (want.provider !== undefined) expect(out.decision.provider).toBe(want.provider);
    if (want.blocked !== undefined) expect(out.blocked).toBe(want.blocked);
    if (want.cost !== undefined) expect(out.decision.cost).toBe(want.cost);
    if (want.waitOnline !== undefined) expect(out.waitOnline).toBe(want.waitOnline);
    if (want.reason) expect(out.decision.reason).toMatch(want.reason);
    if (want.action !== undefined) expect(out.decision.action).toBe(want.action);
    if (want.askCloud !== undefined) expect(out.decision.askCloud).toBe(want.askCloud);
    expect(out.decision.blocked).toBe(out.blocked);
    if (want.warning === null) expect(out.decision.warning).toBeNull();
    else if (want.warning) expect(out.decision.warning).toMatch(want.warning);
    expect(out.decision.reason.length).toBeGreaterThan(0);
  });

  it('words the cost line for one image', () => {
    expect(costLine(1, { used: 99, limit: 100 }, 'free')).toBe('uses 1 of your 1 cloud image left this month');
  });
});
