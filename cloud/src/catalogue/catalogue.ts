/**
 * The cloud model catalogue: which models the workers serve and which plans may use them. It is
 * configuration (ATELIER_CLOUD_MODELS), read once at boot; the API refuses an unknown or forbidden
 * model with MODEL_NOT_AVAILABLE before anything is reserved, and the worker loads the folder the
 * catalogue names — never a path from a request.
 */
import path from 'node:path';
import { z } from 'zod';
import { AppError, ModelId, PLAN_IDS, PlanId, err, ok } from '@atelier/common';
import type { Result } from '@atelier/common';

export const CatalogueEntryInput = z
  .object({
    id: ModelId,
    name: z.string().min(1).max(100).optional(),
    /** Plans allowed to use the model; absent means every plan. */
    plans: z.array(PlanId).min(1).optional(),
    default: z.boolean().optional(),
    /** The model folder, absolute or relative to the models root; absent means `<root>/<id>`. */
    dir: z.string().min(1).optional(),
  })
  .strict();
export const CatalogueInput = z.array(CatalogueEntryInput).min(1, 'the catalogue needs at least one model');
export type CatalogueInput = z.input<typeof CatalogueInput>;

export interface CatalogueModel {
  id: string;
  name: string;
  plans: PlanId[];
  /** The model a request without `model` gets (per plan: the first default the plan may use). */
  default: boolean;
  /** Absolute path of the model folder on a worker. */
  dir: string;
}

/** The trained demo model committed with the engine (native/models), the same folder the desktop and CLI use. */
export const DEMO_MODEL_DIR = path.resolve(import.meta.dirname, '../../../native/models/atelier-demo-shapes');

/**
 * What the local stack and tests serve when nothing is configured: the demo model, which draws what
 * it is asked (every plan, the default), and the project's random-weight fixture models.
 */
export const DEFAULT_CATALOGUE: CatalogueInput = [
  { id: 'atelier-demo-shapes', name: 'Atelier demo: shapes', default: true, dir: DEMO_MODEL_DIR },
  { id: 'atelier-fixture-sd', name: 'Atelier fixture (SD layout)' },
  { id: 'atelier-fixture-turbo', name: 'Atelier fixture (Turbo layout)', plans: ['pro'] },
];

export interface ModelCatalogue {
  list(): readonly CatalogueModel[];
  get(id: string): CatalogueModel | undefined;
  /**
   * The model a request on `plan` runs: `requested` if it exists and the plan may use it, or the
   * plan's default when absent. Anything else is MODEL_NOT_AVAILABLE.
   */
  resolve(requested: string | undefined, plan: PlanId): Result<CatalogueModel>;
}

export function createModelCatalogue(input: CatalogueInput, opts: { modelsRoot: string }): ModelCatalogue {
  const parsed = CatalogueInput.parse(input);
  const seen = new Set<string>();
  const models: CatalogueModel[] = parsed.map((e) => {
    if (seen.has(e.id)) throw new Error(`catalogue lists model "${e.id}" twice`);
    seen.add(e.id);
    return {
      id: e.id,
      name: e.name ?? e.id,
      plans: e.plans ?? [...PLAN_IDS],
      default: e.default ?? false,
      dir: path.resolve(opts.modelsRoot, e.dir ?? e.id),
    };
  });
  // Every model is usable by some plan, and a request without a model has an answer on each plan
  // that can use anything at all.
  if (!models.some((m) => m.default)) models[0]!.default = true;
  const byId = new Map(models.map((m) => [m.id, m]));

  const notAvailable = (model: string | undefined, plan: PlanId) =>
    new AppError('MODEL_NOT_AVAILABLE', `model ${model ?? '(default)'} is not available on plan ${plan}`, {
      details: {
        model: model ?? null,
        plan,
        available: models.filter((m) => m.plans.includes(plan)).map((m) => m.id),
      },
    });

  return {
    list: () => models,
    get: (id) => byId.get(id),
    resolve(requested, plan) {
      if (requested === undefined) {
        const m = models.find((x) => x.default && x.plans.includes(plan)) ?? models.find((x) => x.plans.includes(plan));
        return m ? ok(m) : err(notAvailable(undefined, plan));
      }
      const m = byId.get(requested);
      if (!m || !m.plans.includes(plan)) return err(notAvailable(requested, plan));
      return ok(m);
    },
  };
}

/**
 * Parses the ATELIER_CLOUD_MODELS value: a JSON array of `{ id, name?, plans?, default?, dir? }`.
 * Throws an Error naming the variable and the bad field, for config.ts to fail fast with.
 */
export function parseCatalogueEnv(raw: string | undefined): CatalogueInput {
  if (raw === undefined || raw.trim() === '') return DEFAULT_CATALOGUE;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error('ATELIER_CLOUD_MODELS must be a JSON array of { id, name?, plans?, default?, dir? }');
  }
  const r = CatalogueInput.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`ATELIER_CLOUD_MODELS: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return r.data;
}

/**
 * The generation service's ModelResolver on this catalogue: the model id a request runs, or a
 * thrown AppError('MODEL_NOT_AVAILABLE') before anything is reserved.
 */
export function catalogueResolver(catalogue: ModelCatalogue): (requested: string | undefined, plan: PlanId) => string {
  return (requested, plan) => {
    const r = catalogue.resolve(requested, plan);
    if (!r.ok) throw r.error;
    return r.value.id;
  };
}
