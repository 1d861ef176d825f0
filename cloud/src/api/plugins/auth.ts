/**
 * `auth`: the token verifier and the user provisioner on the instance (`app.verifier`,
 * `app.provisioner`), and `authenticate` — the ONE hook every authenticated route runs behind.
 *
 * app.ts registers the authenticated routes inside one encapsulated scope that registers
 * `authenticate` first; its hooks apply to that scope only. Public routes live outside it and
 * say so with `config: { auth: false }`; app.ts refuses to start when a /v1 route is in neither
 * (so a route can be public only on purpose).
 */
import { AppError, ErrorBody, httpStatusFor } from '@atelier/common';
import fp from 'fastify-plugin';
import type { Config } from '../../config.ts';
import { cognitoEmailLookup, createProvisioner, type EmailLookup, type Provisioner } from '../../auth/provision.ts';
import { bearerToken, createTokenVerifier, type TokenVerifier } from '../../auth/verifier.ts';

export interface AuthUser {
  id: string;
  token: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    verifier: TokenVerifier;
    provisioner: Provisioner;
  }
  interface FastifyRequest {
    user: AuthUser | null;
    /** Frees this request's per-user in-flight slot (set once authenticated). */
    releaseInFlight: (() => void) | null;
  }
  interface FastifyContextConfig {
    /** false: the route is public (no token needed); it must then live outside the authenticated scope. */
    auth?: boolean;
  }
}

export interface AuthPluginOptions {
  config: Config;
  verifier?: TokenVerifier | undefined;
  emailLookup?: EmailLookup | undefined;
}

export const auth = fp<AuthPluginOptions>(
  async (app, opts) => {
    const { config } = opts;
    const verifier =
      opts.verifier ??
      createTokenVerifier({
        issuer: config.cognito.issuer,
        clientId: config.cognito.clientId,
        jwksUrl: config.cognito.jwksUrl,
      });
    const provisioner = createProvisioner(
      app.db.app,
      opts.emailLookup ??
        cognitoEmailLookup(config.cognito.endpoint, 2_000, {
          absentMeansVerified: config.cognito.region === 'local' && !config.production,
        }),
      (msg, err) => app.log.warn({ err }, msg),
      {
        refreshMs: config.cognito.emailRefreshSeconds * 1000,
        // The Stripe customer follows the account's verified email (no-op when billing is off).
        onEmailChanged: async (userId, email) => app.billing?.syncCustomerEmail(userId, email),
      },
    );
    app.decorate('verifier', verifier);
    app.decorate('provisioner', provisioner);
    app.decorateRequest('user', null);
    app.decorateRequest('releaseInFlight', null);
  },
  { name: 'auth', fastify: '5.x', dependencies: ['db', 'limits', 'billing'] },
);

/** Routes registered in the scope that registered `authenticate` (filled by its onRoute hook). */
export const AUTHENTICATED = Symbol('atelier.authenticated');

/**
 * The hook of the authenticated scope. It runs in preParsing — after every onRequest hook (the
 * per-IP limit), before the body is read — so a flood is refused before it costs an RSA verify;
 * failed attempts count against the IP and past their limit get 429. Then, before any database
 * work, the user's in-flight slot and per-user rate; then the user row on first sight.
 * Every log line of the request from here on carries the user id.
 */
export const authenticate = fp(
  async (scope) => {
    const { limits, verifier, provisioner } = scope;
    scope.addHook('onRoute', (r) => {
      if ((r.config as { auth?: boolean } | undefined)?.auth === false)
        throw new Error(`${String(r.method)} ${r.url} is marked public but registered in the authenticated scope`);
      r.config = Object.assign(r.config ?? {}, { [AUTHENTICATED]: true });
      const schema = r.schema as { hide?: boolean; response?: Record<string, unknown> } | undefined;
      if (schema && !schema.hide && schema.response) schema.response[401] ??= ErrorBody;
    });
    scope.addHook('preParsing', async (req, reply) => {
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
      req.user = { id: verified.sub, token };
      const log = req.log.child({ userId: verified.sub });
      req.log = log;
      reply.log = log;
      req.releaseInFlight = limits.enterRequest(verified.sub);
      await limits.userRateLimit(req, reply);
      await provisioner.ensure(verified.sub, token);
    });
    scope.addHook('onResponse', async (req) => {
      req.releaseInFlight?.();
      req.releaseInFlight = null;
    });
  },
  { name: 'authenticate', fastify: '5.x', dependencies: ['auth', 'limits'] },
);
