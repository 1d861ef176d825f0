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
};

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
    { target: 'local', warning: /slow/, reason: /no cloud images/ },
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
    { target: 'cloud', blocked: 'AUTH_REQUIRED', warning: /Sign in/ },
  ],
  [
    'cloud forced, over quota',
    { requested: 'cloud', quota: { used: 100, limit: 100 } },
    { target: 'cloud', blocked: 'QUOTA_EXCEEDED', warning: /0 cloud images left/ },
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
    if (want.warning === null) expect(out.decision.warning).toBeNull();
    else if (want.warning) expect(out.decision.warning).toMatch(want.warning);
    expect(out.decision.reason.length).toBeGreaterThan(0);
  });

  it('words the cost line for one image', () => {
    expect(costLine(1, { used: 99, limit: 100 }, 'free')).toBe('uses 1 of your 1 cloud image left this month');
  });
});
