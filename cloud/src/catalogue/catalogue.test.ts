import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createModelCatalogue, parseCatalogueEnv } from './catalogue.ts';

const root = '/models';
const catalogue = createModelCatalogue(
  [
    { id: 'sd-small', name: 'Small', default: true },
    { id: 'sd-turbo', plans: ['pro'], dir: '/opt/turbo' },
  ],
  { modelsRoot: root },
);

describe('model catalogue', () => {
  it.each([
    { requested: undefined, plan: 'free', want: 'sd-small' },
    { requested: undefined, plan: 'pro', want: 'sd-small' },
    { requested: 'sd-small', plan: 'free', want: 'sd-small' },
    { requested: 'sd-turbo', plan: 'pro', want: 'sd-turbo' },
    { requested: 'sd-turbo', plan: 'free', want: null },
    { requested: 'nope', plan: 'pro', want: null },
  ] as const)('resolves $requested on $plan → $want', ({ requested, plan, want }) => {
    const r = catalogue.resolve(requested, plan);
    if (want === null) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe('MODEL_NOT_AVAILABLE');
        expect(r.error.status).toBe(422);
      }
    } else {
      expect(r.ok && r.value.id).toBe(want);
    }
  });

  it('resolves folders against the models root unless absolute', () => {
    expect(catalogue.get('sd-small')?.dir).toBe(path.join(root, 'sd-small'));
    expect(catalogue.get('sd-turbo')?.dir).toBe('/opt/turbo');
  });

  it('makes the first model the default when none is marked', () => {
    const c = createModelCatalogue([{ id: 'a' }, { id: 'b' }], { modelsRoot: root });
    expect(c.resolve(undefined, 'free').ok && c.list()[0]?.default).toBe(true);
  });

  it('refuses a duplicate id', () => {
    expect(() => createModelCatalogue([{ id: 'a' }, { id: 'a' }], { modelsRoot: root })).toThrow(/twice/);
  });

  it('parses the env var and names it in errors', () => {
    expect(parseCatalogueEnv(undefined)[0]?.id).toBe('atelier-demo-shapes');
    expect(parseCatalogueEnv('[{"id":"x","plans":["pro"]}]')).toEqual([{ id: 'x', plans: ['pro'] }]);
    expect(() => parseCatalogueEnv('nope')).toThrow(/ATELIER_CLOUD_MODELS/);
    expect(() => parseCatalogueEnv('[{"id":"Bad Id"}]')).toThrow(/ATELIER_CLOUD_MODELS: 0.id/);
    expect(() => parseCatalogueEnv('[{"id":"x","plans":["gold"]}]')).toThrow(/0.plans.0/);
  });
});
