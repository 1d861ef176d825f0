/**
 * The Atelier Cloud API as a Fastify plugin-composed app: `buildApp(deps)` returns a ready
 * instance that does not listen (server.ts listens; tests use inject or listen on port 0).
 *
 * Authentication is one hook: every route under /v1 requires a verified Cognito access token
 * unless it sets `config: { auth: false }` (public routes, the Stripe webhook). Handlers read the
 * user from `req.user` — never from the body.
 */
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import { AppError, ErrorBody, httpStatusFor, type PlanId } from '@atelier/common';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { sendError, toAppError } from './api/errors.ts';
import { createLimits, type Limits } from './api/limits.ts';
import { createMetrics, instrument, type Metrics } from './api/metrics.ts';
import { securityHeaders } from './api/security-headers.ts';
import generationRoutes from './api/routes/generations.ts';
import meRoutes from './api/routes/me.ts';
import opsRoutes from './api/routes/ops.ts';
import imageRoutes from './api/routes/images.ts';
import boardRoutes from './api/routes/boards.ts';
import modelRoutes from './api/routes/models.ts';
import { catalogueResolver, createModelCatalogue, type ModelCatalogue } from './catalogue/catalogue.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { S3ObjectStore } from './storage/s3-object-store.ts';
import planRoutes from './api/routes/plans.ts';
import billingRoutes from './api/routes/billing.ts';
import syncRoutes from './api/routes/sync.ts';
import uploadRoutes from './api/routes/uploads.ts';
import { cognitoEmailLookup, createProvisioner, type EmailLookup, type Provisioner } from './auth/provision.ts';
import { bearerToken, createTokenVerifier, type TokenVerifier } from './auth/verifier.ts';
import type { Config } from './config.ts';
import type { Pool } from './db/pool.ts';
import type { EventHub } from './events/hub.ts';
import eventRoutes, { EVENTS_PROTOCOL } from './events/route.ts';
import { createGenerationService, type GenerationService, type ModelResolver } from './generations/service.ts';
import { createLogger } from './logger.ts';
import type { JobQueue } from './queue/job-queue.ts';

export interface AppDeps {
  config: Config;
  /** Role atelier_app: every user query goes through withUserTx on this pool. */
  pool: Pool;
  /** Role atelier_system (BYPASSRLS), for routes that act for no user (webhooks). */
  systemPool?: Pool;
  queue: JobQueue;
  events: EventHub;
  verifier?: TokenVerifier;
  emailLookup?: EmailLookup;
  /** A pino logger, or false for none (benchmarks). Default: JSON logs at config.logLevel. */
  logger?: Logger | false;
  /** Clock override for tests; null/undefined = the database's now(). */
  now?: () => Date | null;
  /** Which model a request runs on a plan. Default: the requested one, else config.defaultModel. */
  resolveModel?: ModelResolver;
  /** Image bytes (S3). Default: an S3ObjectStore from config.gen.s3, closed with the app. */
  objectStore?: ObjectStore;
  /**
   * The cloud model catalogue. When given, it also resolves models at POST /v1/generations
   * (MODEL_NOT_AVAILABLE) unless `resolveModel` is set. Default for GET /v1/models: config.gen.catalogue.
   */
  catalogue?: ModelCatalogue;
  // ── other areas add their collaborators here (billing, …) ──
}

/** Whether a route needs a verified token: every /v1 route unless it sets `config: { auth: false }`. */
export function requiresAuth(routeUrl: string, config: { auth?: boolean } | undefined): boolean {
  return (routeUrl === '/v1' || routeUrl.startsWith('/v1/')) && config?.auth !== false;
}

export interface RegisteredRoute {
  method: string;
  /** The route's template, e.g. `/v1/images/:id`. */
  url: string;
  public: boolean;
}

export interface AuthUser {
  id: string;
  token: string;
}

/** What route plugins get on `app.atelier`. */
export interface AppContext extends AppDeps {
  verifier: TokenVerifier;
  provisioner: Provisioner;
  generations: GenerationService;
  metrics: Metrics;
  /** Every limit's counters (api/limits.ts). */
  limits: Limits;
  /** Every registered route, for the auth gate's tests. */
  routes: RegisteredRoute[];
}

declare module 'fastify' {
  interface FastifyInstance {
    atelier: AppContext;
  }
  interface FastifyRequest {
    user: AuthUser | null;
    /** True when the request did not come through the load balancer (operator surfaces). */
    internal: boolean;
    /** Frees this request's per-user in-flight slot (set once authenticated). */
    releaseInFlight: (() => void) | null;
  }
  interface FastifyContextConfig {
    /** false: the route is public (no token needed). Default true under /v1. */
    auth?: boolean;
  }
}

const defaultResolver =
  (fallback: string): ModelResolver =>
  (requested) =>
    requested ?? fallback;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const logger = deps.logger === false ? undefined : (deps.logger ?? createLogger(config));
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
      metrics.errors.inc({ code: e.code });
      return sendError(reply, e);
    },
    return503OnClosing: true,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const metrics = createMetrics();
  const limits = createLimits(config.limits, metrics.registry);
  // Every route as registered (method, template, whether it is public): the auth gate decides on
  // the matched template, never on the raw URL, and tests enumerate this list.
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    const guarded = requiresAuth(r.url, r.config as { auth?: boolean } | undefined);
    for (const method of methods) if (method !== 'HEAD') routes.push({ method, url: r.url, public: !guarded });
    // The document lists every status the server can answer on a route: the errors any route can
    // get (limits, validation, a busy database) are added here once, not per route.
    const schema = r.schema as { hide?: boolean; response?: Record<string, unknown> } | undefined;
    if (schema && !schema.hide && schema.response && !(r as { websocket?: boolean }).websocket) {
      const withBody = methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH' || m === 'DELETE');
      for (const status of [400, 429, 503, ...(guarded ? [401] : []), ...(withBody ? [413] : [])])
        schema.response[status] ??= ErrorBody;
    }
  });
  const verifier =
    deps.verifier ??
    createTokenVerifier({
      issuer: config.cognito.issuer,
      clientId: config.cognito.clientId,
      jwksUrl: config.cognito.jwksUrl,
    });
  const provisioner = createProvisioner(
    deps.pool,
    deps.emailLookup ??
      cognitoEmailLookup(config.cognito.endpoint, 2_000, {
        absentMeansVerified: config.cognito.region === 'local' && !config.production,
      }),
    (msg, err) => app.log.warn({ err }, msg),
    {
      refreshMs: config.cognito.emailRefreshSeconds * 1000,
      // The billing plugin decorates app.billing (null when billing is off).
      onEmailChanged: async (userId, email) => app.billing?.syncCustomerEmail(userId, email),
    },
  );
  const generations = createGenerationService({
    pool: deps.pool,
    queue: deps.queue,
    resolveModel:
      deps.resolveModel ?? (deps.catalogue ? catalogueResolver(deps.catalogue) : defaultResolver(config.defaultModel)),
    upgradeUrl: config.api.upgradeUrl,
    ...(deps.now ? { now: deps.now } : {}),
  });

  app.decorateRequest('user', null);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.setErrorHandler((err, req, reply) => {
    const e = toAppError(err, req);
    metrics.errors.inc({ code: e.code });
    if ((e.code === 'RATE_LIMITED' || e.code === 'SERVICE_UNAVAILABLE') && !reply.getHeader('retry-after')) {
      const after = (e.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
      reply.header('retry-after', String(typeof after === 'number' ? after : e.code === 'RATE_LIMITED' ? 60 : 2));
    }
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new AppError('NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`)),
  );
  instrument(app, metrics);

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
  await app.register(rateLimit, {
    global: true,
    max: config.limits.ipPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => `ip:${req.ip}`,
    errorResponseBuilder: (_req, ctx) => {
      limits.countRejection('ip');
      return Object.assign(
        new AppError('RATE_LIMITED', `Rate limit: ${ctx.max} per minute`, {
          details: { retryAfterSeconds: Math.ceil(ctx.ttl / 1000) },
        }),
        {
          statusCode: 429,
        },
      );
    },
  });
  // Per user, applied by the auth hook to every guarded route as soon as the token is verified
  // (the IP limit above runs first, in onRequest): no route can forget it.
  const userLimiter = app.createRateLimit({
    max: config.limits.userPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => `user:${req.user?.id ?? req.ip}`,
  });
  const userRateLimit = async (req: FastifyRequest, reply: FastifyReply) => {
    const r = await userLimiter(req);
    if (r.isAllowed || !r.isExceeded) return;
    limits.countRejection('user');
    reply.header('retry-after', String(Math.max(1, r.ttlInSeconds)));
    throw new AppError('RATE_LIMITED', `Rate limit: ${r.max} per minute per user`, {
      details: { retryAfterSeconds: Math.max(1, r.ttlInSeconds) },
    });
  };

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Atelier Cloud API',
        version: '1.0.0',
        description: 'Cloud generation, quotas, gallery and billing.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(websocket, {
    options: {
      maxPayload: config.limits.socketMessageBytes,
      // Answer with our protocol when offered; the bearer.<token> entry is never echoed back.
      handleProtocols: (protocols) => (protocols.has(EVENTS_PROTOCOL) ? EVENTS_PROTOCOL : false),
    },
  });

  const ctx: AppContext = { ...deps, verifier, provisioner, generations, metrics, limits, routes };
  app.decorate('atelier', ctx);

  // Authentication: one hook, decided on the MATCHED route's template (a percent-encoded or
  // absolute-form URL that reaches a /v1 handler is authenticated like any other). It runs in
  // preParsing, after every onRequest hook (the per-IP limit), so a flood is refused before it
  // costs an RSA verify; failed attempts count against the IP and past their limit get 429.
  app.decorateRequest('releaseInFlight', null);
  app.addHook('preParsing', async (req, reply) => {
    const route = req.routeOptions.url;
    if (route === undefined) return; // 404s stay 404s
    if (!requiresAuth(route, req.routeOptions.config)) return;
    limits.beforeAuthentication(req.ip);
    let verified: { sub: string };
    let token: string;
    try {
      token = bearerToken(req.headers.authorization);
      verified = await verifier.verify(token);
    } catch (e) {
      if (AppError.is(e) && httpStatusFor(e.code) === 401) limits.authenticationFailed(req.ip);
      throw e;
    }
    // Before any database work: one user cannot hold the whole connection pool.
    req.releaseInFlight = limits.enterRequest(verified.sub);
    req.user = { id: verified.sub, token };
    await userRateLimit(req, reply);
    await provisioner.ensure(verified.sub, token);
  });
  app.addHook('onResponse', async (req) => {
    req.releaseInFlight?.();
    req.releaseInFlight = null;
  });

  // ── Route plugins: one per file under api/routes (or the area's folder). Add yours here. ──
  await app.register(opsRoutes);
  await app.register(planRoutes);
  await app.register(meRoutes);
  await app.register(generationRoutes);
  await app.register(eventRoutes);
  // cloud-gen (issue 5): images, boards, models
  const objectStore = deps.objectStore ?? new S3ObjectStore(config.gen.s3);
  if (!deps.objectStore) app.addHook('onClose', async () => objectStore.close());
  const catalogue = deps.catalogue ?? createModelCatalogue(config.gen.catalogue, { modelsRoot: config.gen.modelsRoot });
  await app.register(imageRoutes, { store: objectStore, presignSeconds: config.gen.s3.presignSeconds });
  await app.register(boardRoutes);
  await app.register(modelRoutes, { catalogue });
  // billing (issue 6): checkout, portal, return page, Stripe webhook (503 BILLING_DISABLED without keys)
  await app.register(billingRoutes);
  // sync (issue 13): uploads of local images, the change feed and per-field edits
  await app.register(uploadRoutes, { store: objectStore, presignSeconds: config.gen.s3.presignSeconds });
  await app.register(syncRoutes, { store: objectStore, presignSeconds: config.gen.s3.presignSeconds });
  // ── end of route plugins ──

  app.get('/openapi.json', { config: { auth: false }, schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}

export type { PlanId };
