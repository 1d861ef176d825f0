/**
 * The Atelier Cloud API, composed from named plugins: `buildApp(deps)` returns a ready instance
 * that does not listen (server.ts listens; tests use inject or listen on port 0).
 *
 * Plugins (fastify-plugin, each with its `name` and `dependencies`, each decorating the instance):
 *   db → app.db            queue → app.queue        events → app.events (+ WebSocket server)
 *   metrics → app.metrics  limits → app.limits      billing → app.billing
 *   auth → app.verifier, app.provisioner            generations → app.generations
 *   gallery → app.gallery, app.catalogue            periodic → pg-boss schedules (once per cluster)
 *
 * Routes: public routes are registered at the root and carry `config: { auth: false }`; every
 * other route goes in AUTHENTICATED_ROUTES, which run inside one encapsulated scope behind the
 * `authenticate` hook (token, per-user limits, user row). A /v1 route in neither refuses to boot.
 */
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { API_KEY_SCOPE_DESCRIPTIONS, API_KEY_SCOPES, AppError, ErrorBody, type PlanId } from '@atelier/common';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type RouteOptions,
} from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { sendError, toAppError } from './api/errors.ts';
import { AUTHENTICATED, auth as authPlugin, authenticate, type AuthUser } from './api/plugins/auth.ts';
import dbPlugin from './api/plugins/db.ts';
import eventsPlugin from './api/plugins/events.ts';
import galleryPlugin from './api/plugins/gallery.ts';
import limitsPlugin from './api/plugins/limits.ts';
import metricsPlugin from './api/plugins/metrics.ts';
import periodicPlugin from './api/plugins/periodic.ts';
import queuePlugin from './api/plugins/queue.ts';
import { securityHeaders } from './api/security-headers.ts';
import accountRoutes, { type AccountRoutesOptions } from './api/routes/account.ts';
import apiKeyRoutes from './api/routes/api-keys.ts';
import billingRoutes, { billingPublicRoutes } from './api/routes/billing.ts';
import boardRoutes from './api/routes/boards.ts';
import generationRoutes from './api/routes/generations.ts';
import imageRoutes from './api/routes/images.ts';
import meRoutes from './api/routes/me.ts';
import modelRoutes from './api/routes/models.ts';
import opsRoutes from './api/routes/ops.ts';
import planRoutes from './api/routes/plans.ts';
import syncRoutes, { type SyncRouteOptions } from './api/routes/sync.ts';
import uploadRoutes from './api/routes/uploads.ts';
import inputRoutes from './api/routes/inputs.ts';
import webhookRoutes from './api/routes/webhooks.ts';
import webhooksPlugin from './webhooks/plugin.ts';
import { webhookPayloadSchemas, webhooksOpenApi } from './webhooks/openapi.ts';
import type { WebhookJobs } from './webhooks/emitter.ts';
import type { Resolver } from './webhooks/ssrf.ts';
import type { ApiKeyAuthenticator } from './api-keys/authenticator.ts';
import usageRoutes from './api/routes/usage.ts';
import type { EmailLookup } from './auth/provision.ts';
import type { TokenVerifier } from './auth/verifier.ts';
import billingPlugin from './billing/plugin.ts';
import { catalogueResolver, type ModelCatalogue } from './catalogue/catalogue.ts';
import type { Config } from './config.ts';
import type { Pool } from './db/pool.ts';
import type { EventHub } from './events/hub.ts';
import eventRoutes from './events/route.ts';
import generationsPlugin from './generations/plugin.ts';
import type { ModelResolver } from './generations/service.ts';
import { createLogger } from './logger.ts';
import { createErrorTracker, type ErrorTracker } from './observability/error-tracking.ts';
import type { JobQueue } from './queue/job-queue.ts';
import type { ObjectStore } from './storage/object-store.ts';

export interface AppDeps {
  config: Config;
  /** Role atelier_app: every user query goes through withUserTx on this pool. */
  pool: Pool;
  /** Role atelier_system (BYPASSRLS), for routes that act for no user (webhooks) and periodic work. */
  systemPool?: Pool;
  queue: JobQueue;
  events: EventHub;
  verifier?: TokenVerifier;
  emailLookup?: EmailLookup;
  /** API key authentication (benchmarks: cache off). Default: cached, listening for revocations. */
  apiKeys?: ApiKeyAuthenticator;
  /** A pino logger, or false for none (benchmarks). Default: JSON logs at config.logLevel. */
  logger?: Logger | false;
  /** Clock override for tests; null/undefined = the database's now(). */
  now?: () => Date | null;
  /** Which model a request runs on a plan. Default: the catalogue's resolver, else the requested one or config.defaultModel. */
  resolveModel?: ModelResolver;
  /** Image bytes (S3). Default: an S3ObjectStore from config.gen.s3, closed with the app. */
  objectStore?: ObjectStore;
  /**
   * The cloud model catalogue. When given, it also resolves models at POST /v1/generations
   * (MODEL_NOT_AVAILABLE) unless `resolveModel` is set. Default for GET /v1/models: config.gen.catalogue.
   */
  catalogue?: ModelCatalogue;
  /** The Redis client the limits count in (tests). Default: one from REDIS_URL, or none (per process). */
  redis?: Redis;
  /** Error tracking (Sentry). Default: from SENTRY_DSN, off without it. */
  errorTracker?: ErrorTracker;
  /** Options of the account routes (tests): identity, objects, deletion jobs. Default: Cognito, S3, pg-boss. */
  account?: AccountRoutesOptions;
  /** Options of the sync and upload routes (tests). Default: app.objectStore, config.gen.s3.presignSeconds. */
  sync?: SyncRouteOptions;
  /** Webhooks (tests): where delivery jobs go and how URLs resolve. Default: pg-boss via `queue`, system DNS. */
  webhooks?: { jobs?: WebhookJobs; resolve?: Resolver };
}

/**
 * The route plugins behind the `authenticate` hook. Add an authenticated area's plugin here; a
 * public route instead registers at the root with `config: { auth: false }`.
 */
export const AUTHENTICATED_ROUTES: FastifyPluginAsync[] = [
  meRoutes,
  generationRoutes,
  imageRoutes,
  boardRoutes,
  billingRoutes,
  accountRoutes,
  uploadRoutes,
  syncRoutes,
  inputRoutes,
  webhookRoutes,
  apiKeyRoutes,
  usageRoutes,
] as FastifyPluginAsync[];

export interface RegisteredRoute {
  method: string;
  /** The route's template, e.g. `/v1/images/:id`. */
  url: string;
  /** False when the route runs behind the `authenticate` hook. */
  public: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    /** Every route as registered (for the auth gate's tests and the boot check). */
    registeredRoutes(): RegisteredRoute[];
    errorTracker: ErrorTracker;
  }
  interface FastifyRequest {
    /** True when the request did not come through the load balancer (operator surfaces). */
    internal: boolean;
  }
}

export type { AuthUser };

const defaultResolver =
  (fallback: string): ModelResolver =>
  (requested) =>
    requested ?? fallback;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const logger = deps.logger === false ? undefined : (deps.logger ?? createLogger(config));
  const errorTracker = deps.errorTracker ?? createErrorTracker(config.observability);
  const app: FastifyInstance = Fastify({
    ...(logger ? { loggerInstance: logger as FastifyBaseLogger } : { logger: false }),
    bodyLimit: config.limits.bodyBytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,100}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    // Exactly the load balancer's hop(s): the client writes everything further left in X-Forwarded-For.
    // Hop i = 0 is the socket's peer (the load balancer, the only thing the API's security group
    // admits); trusting i < hops makes the client IP the address that hop appended.
    trustProxy:
      config.limits.trustProxyHops > 0 ? (_addr: string, i: number) => i < config.limits.trustProxyHops : false,
    forceCloseConnections: 'idle',
    // Router errors (bad percent-encoding, …) skip every hook: answer them with the standard
    // error body and the same security headers as any other reply.
    frameworkErrors: (err, req, reply) => {
      for (const [name, value] of app.securityHeaders ?? []) reply.header(name, value);
      reply.header('x-request-id', req.id);
      const e = toAppError(err, req);
      app.metrics.errors.inc({ code: e.code });
      return sendError(reply, e);
    },
    return503OnClosing: true,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('config', config);
  app.decorate('errorTracker', errorTracker);
  if (!deps.errorTracker) app.addHook('onClose', async () => errorTracker.close());

  // Every route as registered: the root's onRoute hook runs first for every route, the
  // authenticated scope's hook then marks its own (api/plugins/auth.ts).
  const routes: RouteOptions[] = [];
  app.decorate('registeredRoutes', () =>
    routes.flatMap((r) =>
      (Array.isArray(r.method) ? r.method : [r.method])
        .filter((m) => m !== 'HEAD')
        .map((method) => ({
          method,
          url: r.url,
          public: !(r.config as Record<symbol, unknown> | undefined)?.[AUTHENTICATED],
        })),
    ),
  );
  app.addHook('onRoute', (r) => {
    routes.push(r);
    // The document lists every status the server can answer on a route: the errors any route can
    // get (limits, validation, a busy database) are added here once, not per route (401: auth.ts).
    const schema = r.schema as { hide?: boolean; response?: Record<string, unknown> } | undefined;
    if (schema && !schema.hide && schema.response && !(r as { websocket?: boolean }).websocket) {
      const methods = Array.isArray(r.method) ? r.method : [r.method];
      const withBody = methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH' || m === 'DELETE');
      for (const status of [400, 429, 503, ...(withBody ? [413] : [])]) schema.response[status] ??= ErrorBody;
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.setErrorHandler((err, req, reply) => {
    const e = toAppError(err, req);
    app.metrics.errors.inc({ code: e.code });
    if (e.code === 'INTERNAL')
      errorTracker.capture(err, { requestId: req.id, userId: req.user?.id ?? null, route: req.routeOptions.url });
    if ((e.code === 'RATE_LIMITED' || e.code === 'SERVICE_UNAVAILABLE') && !reply.getHeader('retry-after')) {
      const after = (e.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
      reply.header('retry-after', String(typeof after === 'number' ? after : e.code === 'RATE_LIMITED' ? 60 : 2));
    }
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new AppError('NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`)),
  );

  securityHeaders(app);

  // Operator surfaces (/metrics, /docs, /openapi.json) are not for the internet. Behind the load
  // balancer (TRUST_PROXY_HOPS > 0) every request it forwards carries X-Forwarded-For, which the
  // balancer always appends and a client cannot strip; scrapers and health checks inside the VPC
  // reach the task directly and carry none. A forwarded request gets the same 404 as an unknown path.
  const isOpsRoute = (url: string | undefined) =>
    url === '/metrics' || url === '/openapi.json' || url === '/docs' || (url?.startsWith('/docs/') ?? false);
  app.decorateRequest('internal', false);
  app.addHook('onRequest', async (req) => {
    req.internal = config.limits.trustProxyHops === 0 || req.headers['x-forwarded-for'] === undefined;
    if (!req.internal && isOpsRoute(req.routeOptions.url))
      throw new AppError('NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`);
  });
  if (config.api.corsOrigins.length) await app.register(cors, { origin: config.api.corsOrigins, credentials: false });

  // ── The named plugins (each declares what it needs; fastify-plugin checks the order) ──
  await app.register(dbPlugin, { pool: deps.pool, systemPool: deps.systemPool, now: deps.now });
  await app.register(queuePlugin, { queue: deps.queue });
  await app.register(eventsPlugin, { events: deps.events, maxPayload: config.limits.socketMessageBytes });
  await app.register(webhooksPlugin, { config: config.webhooks, ...deps.webhooks });
  await app.register(metricsPlugin);
  await app.register(limitsPlugin, { config: config.limits, redis: deps.redis });
  await app.register(billingPlugin, { config: config.billing });
  await app.register(authPlugin, {
    config,
    verifier: deps.verifier,
    emailLookup: deps.emailLookup,
    apiKeys: deps.apiKeys,
  });
  await app.register(galleryPlugin, { config, objectStore: deps.objectStore, catalogue: deps.catalogue });
  await app.register(generationsPlugin, {
    // The catalogue also gates POST /v1/generations when one was given: unknown or forbidden
    // models are MODEL_NOT_AVAILABLE.
    resolveModel:
      deps.resolveModel ?? (deps.catalogue ? catalogueResolver(deps.catalogue) : defaultResolver(config.defaultModel)),
    upgradeUrl: config.api.upgradeUrl,
  });
  await app.register(periodicPlugin, { config });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Atelier Cloud API',
        version: '1.0.0',
        description: 'Cloud generation, quotas, gallery and billing.',
      },
      components: {
        schemas: webhookPayloadSchemas(),
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A Cognito access token.' },
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'atl_…',
            description:
              'An API key (`Authorization: Bearer atl_…`), created in the app or with POST /v1/api-keys. A ' +
              'route that keys may call names the scope it needs in `x-api-key-scope`; other routes answer ' +
              '403 API_KEY_NOT_ALLOWED. Scopes: ' +
              API_KEY_SCOPES.map((s) => `\`${s}\` — ${API_KEY_SCOPE_DESCRIPTIONS[s]}`).join('; ') +
              ". Same plan, quota, rate limits and tenancy as the key owner's session.",
          },
        },
      },
      security: [{ bearer: [] }],
      // OpenAPI extensions (x-…) are passed through by @fastify/swagger but not in its types.
      ...({ 'x-webhooks': webhooksOpenApi() } as object),
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  // ── Public routes (each says `config: { auth: false }`) ──
  await app.register(opsRoutes);
  await app.register(planRoutes);
  await app.register(modelRoutes);
  await app.register(eventRoutes); // authenticates on the socket itself (events/route.ts)
  await app.register(billingPublicRoutes, { webhookBodyBytes: config.limits.webhookBodyBytes });
  app.get('/openapi.json', { config: { auth: false }, schema: { hide: true } }, async () => app.swagger());

  // ── Authenticated routes: one scope, one hook ──
  // Plugin options a test (or server.ts) passes through AppDeps; the rest read the instance's decorators.
  const routeOptions = new Map<FastifyPluginAsync, object>([
    [accountRoutes as FastifyPluginAsync, deps.account ?? {}],
    [uploadRoutes as FastifyPluginAsync, deps.sync ?? {}],
    [syncRoutes as FastifyPluginAsync, deps.sync ?? {}],
  ]);
  await app.register(async (api) => {
    await api.register(authenticate);
    for (const routes of AUTHENTICATED_ROUTES) await api.register(routes, routeOptions.get(routes) ?? {});
  });

  await app.ready();
  const stray = app
    .registeredRoutes()
    .filter((r) => r.public && (r.url === '/v1' || r.url.startsWith('/v1/')))
    .filter((r) => {
      const opts = routes.find((o) => o.url === r.url);
      return (opts?.config as { auth?: boolean } | undefined)?.auth !== false;
    });
  if (stray.length) {
    await app.close();
    throw new Error(
      `Routes outside the authenticated scope without config: { auth: false }: ${stray.map((r) => `${r.method} ${r.url}`).join(', ')}`,
    );
  }
  return app;
}

export type { PlanId };
