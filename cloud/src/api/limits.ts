/**
 * Every limit the API enforces, configured and counted in one place (docs/decisions/0014).
 *
 * Order on a request, each before the work it protects:
 *   1. per client IP, every route (onRequest, before anything else reads the request);
 *   2. failed authentications per client IP, checked before the RSA verify and counted on each 401;
 *   3. requests in flight per user, after the token is verified and before any database work;
 *   4. requests per minute per user (preHandler on API routes), and per API key for key requests.
 * Event sockets: per IP before the upgrade's handler runs, per user once the socket authenticates.
 *
 * Where the counters live: with REDIS_URL set, the per-IP and per-user request rates are counted in
 * Redis (ElastiCache in AWS), so N replicas together allow the configured limit, not N× it
 * (docs/decisions/0101). Without it they are counted in each process (one process: the local stack,
 * tests), and /readyz and the boot log say so. Requests in flight and open sockets are the
 * process's own resources and stay per process; failed authentications per IP too (a brake on
 * guessing in front of an RSA verify: N replicas allow N× it, still far below a useful guess rate).
 * Every rejection is counted in `atelier_limit_rejections_total{limit}`.
 */
import { AppError } from '@atelier/common';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

export const LIMITS_ENV = {
  /** Requests per minute per client IP (all routes). */
  RATE_LIMIT_IP_PER_MINUTE: int(600, 1),
  /** Requests per minute per signed-in user (API routes). */
  RATE_LIMIT_USER_PER_MINUTE: int(300, 1),
  /**
   * Requests per minute per API key, on top of the key's user's limit (which counts requests by
   * keys and sessions together): one runaway script cannot use the whole of its user's rate.
   */
  RATE_LIMIT_KEY_PER_MINUTE: int(120, 1),
  /** Failed authentications (401) per minute per client IP; past it, 429 without verifying. */
  RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: int(30, 1),
  /** Requests of one user being served at once; past it, 429 before any database work. */
  USER_IN_FLIGHT_MAX: int(8, 1),
  /** Open /v1/events sockets per client IP and per user. */
  EVENT_SOCKETS_PER_IP: int(20, 1),
  EVENT_SOCKETS_PER_USER: int(10, 1),
  /** Unit: bytes of a request body. */
  BODY_LIMIT_BYTES: int(64 * 1024, 1024),
  /** Unit: bytes of a Stripe webhook body (events are larger than API requests). */
  WEBHOOK_BODY_LIMIT_BYTES: int(512 * 1024, 1024),
  /** Unit: bytes of one message a client sends on /v1/events. */
  EVENT_MESSAGE_MAX_BYTES: int(64 * 1024, 1024),
  /** Unit: seconds a new event socket has to authenticate before it is closed. */
  EVENT_AUTH_TIMEOUT_SECONDS: int(10, 1),
  /**
   * Redis for the limits shared across API replicas (redis://host:6379, rediss:// for TLS). Unset:
   * each process counts on its own.
   */
  REDIS_URL: z.string().url().optional(),
  /** Prefix of the limit keys in Redis (several deployments or test runs can share one Redis). */
  RATE_LIMIT_REDIS_PREFIX: z.string().min(1).max(100).default('atelier:rl:'),
  /**
   * How many proxies in front of the API append to X-Forwarded-For (the load balancer: 1). The
   * client IP is the address that many hops from the right; anything further left is written by
   * the client and ignored. Default: 1 in production, 0 (the socket's peer) elsewhere.
   */
  TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(5).optional(),
} as const;

export interface LimitsConfig {
  ipPerMinute: number;
  userPerMinute: number;
  keyPerMinute: number;
  authFailuresPerMinute: number;
  userInFlight: number;
  socketsPerIp: number;
  socketsPerUser: number;
  /** Unit: bytes. */
  bodyBytes: number;
  /** Unit: bytes. */
  webhookBodyBytes: number;
  /** Unit: bytes. */
  socketMessageBytes: number;
  /** Unit: ms. */
  socketAuthTimeoutMs: number;
  /** Proxies trusted to append to X-Forwarded-For; 0 = use the socket's peer address. */
  trustProxyHops: number;
  /** Where request rates are counted: Redis (shared by replicas) or null (this process). */
  redisUrl: string | null;
  redisPrefix: string;
}

type LimitsEnv = z.output<z.ZodObject<typeof LIMITS_ENV>>;

export function toLimitsConfig(e: LimitsEnv, ctx: { production: boolean }): LimitsConfig {
  return {
    ipPerMinute: e.RATE_LIMIT_IP_PER_MINUTE,
    userPerMinute: e.RATE_LIMIT_USER_PER_MINUTE,
    keyPerMinute: e.RATE_LIMIT_KEY_PER_MINUTE,
    authFailuresPerMinute: e.RATE_LIMIT_AUTH_FAILURES_PER_MINUTE,
    userInFlight: e.USER_IN_FLIGHT_MAX,
    socketsPerIp: e.EVENT_SOCKETS_PER_IP,
    socketsPerUser: e.EVENT_SOCKETS_PER_USER,
    bodyBytes: e.BODY_LIMIT_BYTES,
    webhookBodyBytes: e.WEBHOOK_BODY_LIMIT_BYTES,
    socketMessageBytes: e.EVENT_MESSAGE_MAX_BYTES,
    socketAuthTimeoutMs: e.EVENT_AUTH_TIMEOUT_SECONDS * 1000,
    trustProxyHops: e.TRUST_PROXY_HOPS ?? (ctx.production ? 1 : 0),
    redisUrl: e.REDIS_URL ?? null,
    redisPrefix: e.RATE_LIMIT_REDIS_PREFIX,
  };
}

export type LimitName = 'ip' | 'user' | 'api_key' | 'auth_failures' | 'user_in_flight' | 'sockets_ip' | 'sockets_user';

/** Fixed one-minute windows per key; memory is bounded by sweeping expired keys. */
export class WindowCounter {
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #hits = new Map<string, { count: number; resetAt: number }>();
  #nextSweep = 0;

  constructor(windowMs = 60_000, now: () => number = Date.now) {
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Hits in the key's current window. */
  count(key: string): { count: number; resetInMs: number } {
    const now = this.#now();
    const e = this.#hits.get(key);
    if (!e || e.resetAt <= now) return { count: 0, resetInMs: this.#windowMs };
    return { count: e.count, resetInMs: e.resetAt - now };
  }

  hit(key: string): number {
    const now = this.#now();
    this.#sweep(now);
    const e = this.#hits.get(key);
    if (!e || e.resetAt <= now) {
      this.#hits.set(key, { count: 1, resetAt: now + this.#windowMs });
      return 1;
    }
    return ++e.count;
  }

  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + this.#windowMs;
    for (const [k, e] of this.#hits) if (e.resetAt <= now) this.#hits.delete(k);
  }
}

/** How many of something each key holds right now (requests in flight, open sockets). */
export class ConcurrencyCounter {
  readonly #held = new Map<string, number>();

  /** A release function, or null when the key already holds `max`. Release is idempotent. */
  tryAcquire(key: string, max: number): (() => void) | null {
    const n = this.#held.get(key) ?? 0;
    if (n >= max) return null;
    this.#held.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#held.get(key) ?? 1) - 1;
      if (left <= 0) this.#held.delete(key);
      else this.#held.set(key, left);
    };
  }

  held(key: string): number {
    return this.#held.get(key) ?? 0;
  }
}

const rateLimited = (message: string, retryAfterSeconds: number, limit: LimitName) =>
  new AppError('RATE_LIMITED', message, { details: { retryAfterSeconds, limit } });

/** The API's limiters; one per app instance. */
export function createLimits(config: LimitsConfig, registry: Registry) {
  const rejections = new Counter({
    name: 'atelier_limit_rejections_total',
    help: 'Requests and sockets refused by a limit',
    labelNames: ['limit'] as const,
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'atelier_auth_failures_total',
    help: 'Failed authentications (401) on API routes and event sockets',
    registers: [registry],
  });
  const failed = new WindowCounter();
  const inFlight = new ConcurrencyCounter();
  const socketsByIp = new ConcurrencyCounter();
  const socketsByUser = new ConcurrencyCounter();

  const reject = (limit: LimitName, e: AppError): AppError => {
    rejections.inc({ limit });
    return e;
  };

  return {
    config,
    /** Called by the IP rate limiter when it refuses a request, so every refusal is counted here. */
    countRejection(limit: LimitName): void {
      rejections.inc({ limit });
    },
    /** Throws RATE_LIMITED when this IP has failed authentication too often this minute. */
    beforeAuthentication(ip: string): void {
      const { count, resetInMs } = failed.count(ip);
      if (count >= config.authFailuresPerMinute)
        throw reject(
          'auth_failures',
          rateLimited(
            `Too many failed sign-ins from this address: ${config.authFailuresPerMinute} per minute`,
            Math.max(1, Math.ceil(resetInMs / 1000)),
            'auth_failures',
          ),
        );
    },
    /** Counts a 401 against the IP. */
    authenticationFailed(ip: string): void {
      authFailures.inc();
      failed.hit(ip);
    },
    /** Takes one of the user's in-flight slots; throws RATE_LIMITED when all are taken. */
    enterRequest(userId: string): () => void {
      const release = inFlight.tryAcquire(userId, config.userInFlight);
      if (!release)
        throw reject(
          'user_in_flight',
          rateLimited(`Too many requests at once: at most ${config.userInFlight} per user`, 1, 'user_in_flight'),
        );
      return release;
    },
    /** A socket slot for this IP, or null (the socket is refused). */
    openSocket(ip: string): (() => void) | null {
      const r = socketsByIp.tryAcquire(ip, config.socketsPerIp);
      if (!r) rejections.inc({ limit: 'sockets_ip' });
      return r;
    },
    /** A socket slot for this user, or null (the socket is refused). */
    authenticateSocket(userId: string): (() => void) | null {
      const r = socketsByUser.tryAcquire(userId, config.socketsPerUser);
      if (!r) rejections.inc({ limit: 'sockets_user' });
      return r;
    },
    inFlight(userId: string): number {
      return inFlight.held(userId);
    },
  };
}
export type Limits = ReturnType<typeof createLimits>;
