/**
 * `limits`: every request limit of the API (api/limits.ts) on the instance as `app.limits`.
 *
 * The per-IP rate (every route, onRequest) and the per-user rate (applied by the `authenticate`
 * hook once the token is verified) are counted by @fastify/rate-limit — in Redis when REDIS_URL is
 * set, so all replicas share one count, else in this process. `app.limits.store` says which.
 */
import rateLimit from '@fastify/rate-limit';
import { AppError } from '@atelier/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import { createLimits, type Limits, type LimitsConfig } from '../limits.ts';

export interface LimitsPluginOptions {
  config: LimitsConfig;
  /** A Redis client to count in (tests); default: one from config.redisUrl, closed with the app. */
  redis?: Redis | undefined;
}

export type AppLimits = Limits & {
  /** Where request rates are counted. */
  store: 'redis' | 'memory';
  /** Counts one request against the user's per-minute limit; throws RATE_LIMITED past it. */
  userRateLimit(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** Counts one request against the API key's per-minute limit (key requests only); RATE_LIMITED past it. */
  keyRateLimit(req: FastifyRequest, reply: FastifyReply): Promise<void>;
};

declare module 'fastify' {
  interface FastifyInstance {
    limits: AppLimits;
  }
}

/** A Redis client for the limits: fail fast (a request never waits on a slow Redis for long). */
export function limitsRedis(url: string): Redis {
  return new Redis(url, { connectTimeout: 1_000, maxRetriesPerRequest: 1, enableAutoPipelining: true });
}

export default fp<LimitsPluginOptions>(
  async (app, opts) => {
    const { config } = opts;
    const base = createLimits(config, app.metrics.registry);
    const redis = opts.redis ?? (config.redisUrl ? limitsRedis(config.redisUrl) : undefined);
    if (redis && !opts.redis) app.addHook('onClose', async () => void (await redis.quit().catch(() => undefined)));
    if (redis) redis.on('error', (err) => app.log.warn({ err }, 'limits: redis error'));

    await app.register(rateLimit, {
      global: true,
      max: config.ipPerMinute,
      timeWindow: 60_000,
      ...(redis ? { redis, nameSpace: config.redisPrefix } : {}),
      // A Redis outage must not take the API down with it: requests pass uncounted (and are logged
      // by the error listener above) until it is back.
      skipOnError: true,
      keyGenerator: (req) => `ip:${req.ip}`,
      errorResponseBuilder: (_req, ctx) => {
        base.countRejection('ip');
        return Object.assign(
          new AppError('RATE_LIMITED', `Rate limit: ${ctx.max} per minute`, {
            details: { retryAfterSeconds: Math.ceil(ctx.ttl / 1000) },
          }),
          { statusCode: 429 },
        );
      },
    });
    const userLimiter = app.createRateLimit({
      max: config.userPerMinute,
      timeWindow: 60_000,
      keyGenerator: (req) => `user:${req.user?.id ?? req.ip}`,
    });

    const keyLimiter = app.createRateLimit({
      max: config.keyPerMinute,
      timeWindow: 60_000,
      keyGenerator: (req) => `key:${req.user?.apiKey?.id ?? req.ip}`,
    });
    const enforce = async (
      limiter: typeof userLimiter,
      name: 'user' | 'api_key',
      per: string,
      req: FastifyRequest,
      reply: FastifyReply,
    ) => {
      const r = await limiter(req);
      if (r.isAllowed || !r.isExceeded) return;
      base.countRejection(name);
      const after = Math.max(1, r.ttlInSeconds);
      reply.header('retry-after', String(after));
      throw new AppError('RATE_LIMITED', `Rate limit: ${r.max} per minute per ${per}`, {
        details: { retryAfterSeconds: after, limit: name },
      });
    };

    const limits: AppLimits = Object.assign(base, {
      store: redis ? ('redis' as const) : ('memory' as const),
      userRateLimit: (req: FastifyRequest, reply: FastifyReply) => enforce(userLimiter, 'user', 'user', req, reply),
      keyRateLimit: (req: FastifyRequest, reply: FastifyReply) => enforce(keyLimiter, 'api_key', 'API key', req, reply),
    });
    app.decorate('limits', limits);
  },
  { name: 'limits', fastify: '5.x', dependencies: ['metrics'] },
);
