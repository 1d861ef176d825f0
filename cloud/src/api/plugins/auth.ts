/**
 * `auth`: the token verifier and the user provisioner on the instance (`app.verifier`,
 * `app.provisioner`), and `authenticate` — the ONE hook every authenticated route runs behind.
 *
 * app.ts registers the authenticated routes inside one encapsulated scope that registers
 * `authenticate` first; its hooks apply to that scope only. Public routes live outside it and
 * say so with `config: { auth: false }`; app.ts refuses to start when a /v1 route is in neither
 * (so a route can be public only on purpose).
 */
import { API_KEY_SCOPE_DESCRIPTIONS, AppError, ErrorBody, httpStatusFor, type ApiKeyScope } from '@atelier/common';
import fp from 'fastify-plugin';
import { ApiKeyAuthenticator } from '../../api-keys/authenticator.ts';
import { looksLikeApiKey } from '../../api-keys/key-format.ts';
import type { Config } from '../../config.ts';
import { cognitoEmailLookup, createProvisioner, type EmailLookup, type Provisioner } from '../../auth/provision.ts';
import { bearerToken, createTokenVerifier, type TokenVerifier } from '../../auth/verifier.ts';

export interface AuthUser {
  id: string;
  /** The bearer credential as sent: a Cognito access token, or an API key when `apiKey` is set. */
  token: string;
  /** Set when the request authenticated with an API key (not a signed-in session). */
  apiKey: { id: string; scopes: readonly ApiKeyScope[] } | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    verifier: TokenVerifier;
    provisioner: Provisioner;
    /** API keys (`Bearer atl_…`): lookup, per-process cache, revocations heard over LISTEN. */
    apiKeys: ApiKeyAuthenticator;
  }
  interface FastifyRequest {
    user: AuthUser | null;
    /** Frees this request's per-user in-flight slot (set once authenticated). */
    releaseInFlight: (() => void) | null;
    /** A cached API key's confirmation, still to await (reads): before the response is sent. */
    apiKeyConfirm: (() => Promise<void>) | null;
  }
  interface FastifyContextConfig {
    /** false: the route is public (no token needed); it must then live outside the authenticated scope. */
    auth?: boolean;
    /**
     * The scope an API key needs to call this route. Absent: API keys are refused with
     * API_KEY_NOT_ALLOWED (managing keys, billing, account deletion need a signed-in session).
     */
    scope?: ApiKeyScope;
  }
}

export interface AuthPluginOptions {
  config: Config;
  verifier?: TokenVerifier | undefined;
  emailLookup?: EmailLookup | undefined;
  /** API key authentication; default: one on the app pool, listening on config.database.appUrl. */
  apiKeys?: ApiKeyAuthenticator | undefined;
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
    const apiKeys =
      opts.apiKeys ??
      new ApiKeyAuthenticator({
        pool: app.db.app,
        listenUrl: config.database.appUrl,
        log: (msg, err) => app.log.warn({ err }, msg),
      });
    if (!opts.apiKeys) {
      await apiKeys.start();
      app.addHook('onClose', async () => apiKeys.stop());
    }
    app.decorate('apiKeys', apiKeys);
    app.decorate('verifier', verifier);
    app.decorate('provisioner', provisioner);
    app.decorateRequest('user', null);
    app.decorateRequest('releaseInFlight', null);
    app.decorateRequest('apiKeyConfirm', null);
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
    const { limits, verifier, provisioner, apiKeys } = scope;
    scope.addHook('onRoute', (r) => {
      if ((r.config as { auth?: boolean } | undefined)?.auth === false)
        throw new Error(`${String(r.method)} ${r.url} is marked public but registered in the authenticated scope`);
      r.config = Object.assign(r.config ?? {}, { [AUTHENTICATED]: true });
      const schema = r.schema as ApiRouteSchema | undefined;
      if (schema && !schema.hide && schema.response) {
        schema.response[401] ??= ErrorBody;
        documentKeyAccess(schema, (r.config as { scope?: ApiKeyScope } | undefined)?.scope);
      }
    });
    scope.addHook('preParsing', async (req, reply) => {
      limits.beforeAuthentication(req.ip);
      let user: AuthUser;
      try {
        const token = bearerToken(req.headers.authorization);
        if (looksLikeApiKey(token)) {
          const { principal: key, confirm } = await apiKeys.begin(token);
          // A read runs first and is confirmed in onSend, usually by its own queries' answers by
          // then (nothing leaves before); anything that changes state is confirmed before the
          // handler (decision 0161).
          if (req.method === 'GET' || req.method === 'HEAD') req.apiKeyConfirm = confirm;
          else await confirm();
          user = { id: key.userId, token, apiKey: { id: key.keyId, scopes: key.scopes } };
        } else {
          user = { id: (await verifier.verify(token)).sub, token, apiKey: null };
        }
      } catch (e) {
        if (AppError.is(e) && httpStatusFor(e.code) === 401) limits.authenticationFailed(req.ip);
        throw e;
      }
      req.user = user;
      const log = req.log.child(user.apiKey ? { userId: user.id, apiKeyId: user.apiKey.id } : { userId: user.id });
      req.log = log;
      reply.log = log;
      if (user.apiKey) requireScope(user.apiKey.scopes, req.routeOptions.config.scope);
      // A key shares its user's in-flight slots and per-user rate (so keys cannot multiply a
      // user's limits), and has its own per-key rate on top.
      req.releaseInFlight = limits.enterRequest(user.id);
      if (user.apiKey) {
        // Both counters in one Redis round trip (the client pipelines commands sent together); a
        // refusal by the user's limit wins over the key's, as when they were counted one by one.
        const [perUser, perKey] = await Promise.allSettled([
          limits.userRateLimit(req, reply),
          limits.keyRateLimit(req, reply),
        ]);
        if (perUser.status === 'rejected') throw perUser.reason;
        if (perKey.status === 'rejected') throw perKey.reason;
        // The row exists: only a signed-in user can create a key, and their first request made it.
        return;
      }
      await limits.userRateLimit(req, reply);
      await provisioner.ensure(user.id, user.token);
    });
    // A revoked key's read is answered with its 401, never with the data the handler produced.
    scope.addHook('onSend', async (req) => {
      const confirm = req.apiKeyConfirm;
      req.apiKeyConfirm = null;
      if (!confirm) return;
      try {
        await confirm();
      } catch (e) {
        if (AppError.is(e) && httpStatusFor(e.code) === 401) limits.authenticationFailed(req.ip);
        throw e;
      }
    });
    scope.addHook('onResponse', async (req) => {
      req.releaseInFlight?.();
      req.releaseInFlight = null;
    });
  },
  { name: 'authenticate', fastify: '5.x', dependencies: ['auth', 'limits'] },
);

interface ApiRouteSchema {
  hide?: boolean;
  description?: string;
  response?: Record<string, unknown>;
  security?: Record<string, string[]>[];
  'x-api-key-scope'?: ApiKeyScope;
}

/** Refuses a key without the route's scope (or on a route no key may call), before any work. */
function requireScope(scopes: readonly ApiKeyScope[], needed: ApiKeyScope | undefined): void {
  if (!needed)
    throw new AppError('API_KEY_NOT_ALLOWED', 'This route needs a signed-in session; API keys cannot call it');
  if (!scopes.includes(needed))
    throw new AppError('API_KEY_SCOPE_MISSING', `This API key lacks the scope "${needed}"`, {
      details: { requiredScope: needed, keyScopes: [...scopes] },
    });
}

/** OpenAPI: which credentials a route takes, and the scope a key needs (components in app.ts). */
function documentKeyAccess(schema: ApiRouteSchema, needed: ApiKeyScope | undefined): void {
  schema.response![403] ??= ErrorBody;
  const note = needed
    ? `API keys need the scope \`${needed}\` (${API_KEY_SCOPE_DESCRIPTIONS[needed]}).`
    : 'Signed-in sessions only: API keys get 403 API_KEY_NOT_ALLOWED.';
  schema.description = schema.description ? `${schema.description}\n\n${note}` : note;
  schema.security = needed ? [{ bearer: [] }, { apiKey: [] }] : [{ bearer: [] }];
  if (needed) schema['x-api-key-scope'] = needed;
}
