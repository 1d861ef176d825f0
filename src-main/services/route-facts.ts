/**
 * The facts the router decides on (router.ts is pure): the engine's providers, the installed
 * model, the memory a job would need, the account's plan and quota, and the settings.
 */
import type { CatalogueModel, GenerateRequest, MemoryEstimate, ModelDownload } from '@atelier/common';
import type { AccountSession } from './account-session.ts';
import type { CloudClient } from './cloud-client.ts';
import type { EnginePort, ModelStorePort } from './engine.ts';
import type { RouteFacts } from './router.ts';
import type { SettingsStore } from './settings.ts';

/**
 * What the engine side adds for issue 10 (see INTERFACES.md): the memory check before a job
 * starts, and the catalogue of real models to download. Optional members so the services run with
 * ports that do not have them (tests, older hosts); the UI then offers neither.
 */
export type MemoryAwareEngine = EnginePort & {
  estimateMemory?(req: {
    width: number;
    height: number;
    count: number;
    modelPath: string | null;
  }): Promise<MemoryEstimate>;
};
export type CatalogueModelStore = ModelStorePort & {
  catalogue?(): Promise<CatalogueModel[]>;
  install?(catalogueId: string, onProgress: (d: ModelDownload) => void): Promise<ModelDownload>;
};

export interface RouteFactsRequest {
  target: GenerateRequest['target'];
  count: number;
  model?: string | undefined;
  width?: number | undefined;
  height?: number | undefined;
  initImage?: string | undefined;
}

export interface RouteFactsOptions {
  engine: MemoryAwareEngine;
  models: ModelStorePort;
  settings: SettingsStore;
  cloud: CloudClient | null;
  account: AccountSession;
  log: (msg: string, err?: unknown) => void;
}

export type RouteFactsService = ReturnType<typeof createRouteFacts>;

export function createRouteFacts({ engine, models, settings, cloud, account, log }: RouteFactsOptions) {
  // Engine facts are cached: provider detection is slow and does not change while running.
  let providersCache: ReturnType<EnginePort['providers']> | null = null;
  const providers = () => {
    providersCache ??= engine.providers();
    providersCache.catch(() => (providersCache = null));
    return providersCache;
  };
  async function resolveModel(model: string | undefined): Promise<{ id: string; path: string } | null> {
    const installed = await models.list();
    const wanted = model ?? settings.get().defaultModel ?? undefined;
    const m = wanted ? installed.find((x) => x.id === wanted) : (installed.find((x) => x.isDefault) ?? installed[0]);
    return m ? { id: m.id, path: m.path } : null;
  }
  async function memoryFor(
    size: { width: number; height: number } | null,
    count: number,
    model: { path: string } | null,
  ): Promise<MemoryEstimate | null> {
    if (!size || !engine.estimateMemory) return null;
    try {
      return await engine.estimateMemory({ ...size, count, modelPath: model?.path ?? null });
    } catch (e) {
      log('memory estimate failed', e);
      return null;
    }
  }
  async function facts(request: RouteFactsRequest): Promise<RouteFacts> {
    const [p, model] = await Promise.all([
      providers().catch(() => ({ providers: [], threads: 0 })),
      resolveModel(request.model),
    ]);
    const size = request.width && request.height ? { width: request.width, height: request.height } : null;
    const s = cloud?.state();
    account.refreshIfStale();
    const current = settings.get();
    const me = account.me();
    const named = request.model ? account.cloudModels().find((m) => m.id === request.model) : undefined;
    return {
      requested: request.target === 'auto' ? current.runMode : request.target,
      count: request.count,
      size,
      providers: p.providers,
      modelInstalled: model !== null,
      signedIn: s?.signedIn ?? false,
      online: s?.online ?? false,
      plan: me?.plan ?? null,
      quota: me ? { used: me.usage.used, limit: me.usage.limit } : null,
      cloudModel: named && !named.default ? { name: named.name, plans: named.plans } : null,
      autoCloud: current.autoCloud,
      memory: await memoryFor(size, request.count, model),
    };
  }
  return { providers, resolveModel, facts };
}
