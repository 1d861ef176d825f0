/**
 * The desktop's way into Atelier Cloud: the session (Cognito tokens, refresh token kept in the
 * SecretStore), typed API calls parsed with the common/ schemas (refresh before expiry, and once
 * more on a 401 AUTH_TOKEN_EXPIRED), the `/v1/events` socket with reconnect, and online/offline
 * detection (a failed request marks offline; a probe with backoff brings it back).
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { z } from 'zod';
import {
  AccountDeletion,
  AccountExport,
  AppError,
  CloudEvent,
  ErrorBody,
  Generation,
  Image,
  ImageList,
  Me,
  ModelList,
  PlanId,
  UrlResponse,
  isErrorCode,
  type GenerateRequest,
  CLIENT_HEADER,
  UsageDaily,
} from '@atelier/common';
import { createCognitoAuth, type CognitoConfig, type Tokens } from './cloud-auth.ts';
import { createThreadedObjectTransfer } from './object-transfer-thread.ts';
import type { SecretStore } from './secret-store.ts';

export interface CloudConfig {
  apiUrl: string;
  cognito: CognitoConfig;
}

export type FetchFn = typeof fetch;

export interface CloudClientOptions {
  config: CloudConfig;
  secretStore: SecretStore;
  fetch?: FetchFn;
  now?: () => number;
  random?: () => number;
  /** Unit: ms. First delay of the reconnect/probe backoff (doubles up to `maxBackoffMs`). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How requests that are safe to repeat ride out a restarting or briefly unreachable API. */
  retry?: Partial<RetryPolicy>;
}

/**
 * Requests that are safe to send again — GET/HEAD, and writes carrying an Idempotency-Key (the API
 * answers a repeat with the first answer) — are retried on a transient failure: the connection
 * failed or was cut, or the answer was SERVICE_UNAVAILABLE (a replica shutting down, the database
 * briefly unreachable, a 5xx without our error body from whatever stands in front of the API).
 * Anything else, and any error still there after the last attempt, reaches the caller.
 */
export interface RetryPolicy {
  /** Attempts in all, including the first. 1 turns retries off. */
  attempts: number;
  /** Unit: ms. First delay before a retry (doubles with jitter up to `maxMs`). */
  baseMs: number;
  /** Unit: ms. */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 200, maxMs: 3_000 };

/** What a retry absorbed: one per repeated attempt, for logs and the chaos test's tally. */
export interface RetryNotice {
  method: string;
  path: string;
  /** 1 for the first retry. */
  attempt: number;
  /** The error code of the failed attempt (OFFLINE, SERVICE_UNAVAILABLE). */
  code: string;
}

export interface CloudSessionState {
  signedIn: boolean;
  email: string | null;
  online: boolean;
  pendingConfirmation: string | null;
  /** False when the secret store refused the refresh token: signed in for this run only. */
  persisted: boolean;
}

const SESSION_KEY = 'cloud-session';

/** The part of GET /v1/billing/subscription the desktop reads (the cloud's schema may carry more). */
export const BillingSubscription = z
  .object({ plan: PlanId, status: z.string().nullable(), hasCustomer: z.boolean() })
  .loose();

/** Exponential backoff with jitter: a delay in [base·2ⁿ/2, base·2ⁿ], capped. */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * (0.5 + random() * 0.5));
}

function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError || (e as { code?: string })?.code === 'ECONNREFUSED';
}

export type CloudClient = ReturnType<typeof createCloudClient>;

export function createCloudClient(opts: CloudClientOptions) {
  const { config, secretStore } = opts;
  const doFetch = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const baseMs = opts.backoffMs ?? 500;
  const maxMs = opts.maxBackoffMs ?? 30_000;
  const auth = createCognitoAuth(config.cognito);
  const events = new EventEmitter<{
    event: [CloudEvent];
    session: [CloudSessionState];
    online: [];
    offline: [];
    retry: [RetryNotice];
  }>();
  const retryPolicy: RetryPolicy = { ...DEFAULT_RETRY, ...opts.retry };

  let tokens: Tokens | null = null;
  let persisted = true;
  let online = true;
  let pendingConfirmation: string | null = null;
  let refreshing: Promise<Tokens> | null = null;
  let closed = false;

  const state = (): CloudSessionState => ({
    signedIn: tokens !== null,
    email: tokens?.username ?? null,
    online,
    pendingConfirmation,
    persisted,
  });
  const emitSession = () => events.emit('session', state());

  async function persist(t: Tokens | null): Promise<void> {
    try {
      if (t) await secretStore.set(SESSION_KEY, JSON.stringify({ username: t.username, refreshToken: t.refreshToken }));
      else await secretStore.delete(SESSION_KEY);
      persisted = true;
    } catch (e) {
      if (AppError.is(e, 'SECRET_STORE_UNAVAILABLE')) persisted = false;
      else throw e;
    }
  }

  // Online / offline -------------------------------------------------------------------------
  let probeTimer: NodeJS.Timeout | null = null;
  let probeAttempt = 0;
  function setOnline(value: boolean): void {
    if (value === online) return;
    online = value;
    if (value) {
      probeAttempt = 0;
      if (probeTimer) clearTimeout(probeTimer);
      probeTimer = null;
      events.emit('online');
    } else {
      events.emit('offline');
      scheduleProbe();
    }
    emitSession();
  }
  function scheduleProbe(): void {
    if (closed || online || probeTimer) return;
    probeTimer = setTimeout(
      async () => {
        probeTimer = null;
        try {
          const r = await doFetch(new URL('/healthz', config.apiUrl), { signal: AbortSignal.timeout(5000) });
          await r.body?.cancel();
          setOnline(true);
          if (tokens) connectEvents();
        } catch {
          probeAttempt++;
          scheduleProbe();
        }
      },
      backoffDelay(probeAttempt, baseMs, maxMs, random),
    );
    probeTimer.unref();
  }
  /** Asks for a connectivity check now (e.g. the OS said the network came back). */
  function checkOnline(): void {
    if (online) return;
    if (probeTimer) clearTimeout(probeTimer);
    probeTimer = null;
    probeAttempt = 0;
    scheduleProbe();
  }

  // Objects (presigned S3 URLs) ------------------------------------------------------------
  const transfer = createThreadedObjectTransfer();
  /** A transfer whose network failed says the app is offline, as an API call's does. */
  async function objects<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (AppError.is(e, 'OFFLINE')) setOnline(false);
      throw e;
    }
  }

  // Session ----------------------------------------------------------------------------------
  async function refresh(): Promise<Tokens> {
    if (!tokens) throw new AppError('AUTH_REQUIRED', 'not signed in');
    refreshing ??= (async () => {
      const current = tokens!;
      try {
        const next = await auth.refresh(current.username, current.refreshToken);
        tokens = next;
        await persist(next);
        return next;
      } catch (e) {
        if (AppError.is(e, 'OFFLINE')) setOnline(false);
        else if (AppError.is(e, 'AUTH_FAILED')) {
          // The refresh token was revoked or expired: the user must sign in again.
          tokens = null;
          await persist(null);
          emitSession();
          throw new AppError('AUTH_REQUIRED', 'session ended: sign in again', { cause: e });
        }
        throw e;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  async function accessToken(): Promise<string> {
    if (!tokens) throw new AppError('AUTH_REQUIRED', 'not signed in');
    if (tokens.expiresAt * 1000 - 30_000 <= now()) return (await refresh()).accessToken;
    return tokens.accessToken;
  }

  // API --------------------------------------------------------------------------------------
  interface RequestOptions {
    body?: unknown;
    idempotencyKey?: string;
    auth?: boolean;
  }
  async function request<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    o: RequestOptions = {},
  ): Promise<z.output<S>> {
    const repeatable = method === 'GET' || method === 'HEAD' || o.idempotencyKey !== undefined;
    const attempts = repeatable ? Math.max(1, retryPolicy.attempts) : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await requestOnce(method, path, schema, o);
      } catch (e) {
        const transient = AppError.is(e, 'OFFLINE') || AppError.is(e, 'SERVICE_UNAVAILABLE');
        if (!transient || attempt >= attempts || closed) {
          // Offline only once the retries are spent: a replica restarting is not the network gone.
          if (AppError.is(e, 'OFFLINE')) setOnline(false);
          throw e;
        }
        events.emit('retry', { method, path, attempt, code: (e as AppError).code });
        await new Promise((r) =>
          setTimeout(r, backoffDelay(attempt - 1, retryPolicy.baseMs, retryPolicy.maxMs, random)),
        );
      }
    }
  }

  async function requestOnce<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    o: RequestOptions,
  ): Promise<z.output<S>> {
    const send = async (token: string | null) => {
      // Tells the cloud these generations came from the app (the usage chart's split, decision 0180).
      const headers: Record<string, string> = { accept: 'application/json', [CLIENT_HEADER]: 'desktop' };
      if (token) headers.authorization = `Bearer ${token}`;
      if (o.body !== undefined) headers['content-type'] = 'application/json';
      if (o.idempotencyKey) headers['idempotency-key'] = o.idempotencyKey;
      try {
        const res = await doFetch(new URL(path, config.apiUrl), {
          method,
          headers,
          body: o.body === undefined ? undefined : JSON.stringify(o.body),
          signal: AbortSignal.timeout(30_000),
        });
        setOnline(true);
        return res;
      } catch (e) {
        if (isNetworkError(e) || (e as Error)?.name === 'TimeoutError')
          throw new AppError('OFFLINE', `${method} ${path}: ${(e as Error).message}`, { cause: e });
        throw e;
      }
    };
    const needsAuth = o.auth !== false;
    let res = await send(needsAuth ? await accessToken() : null);
    if (res.status === 401 && needsAuth) {
      const err = await errorOf(res);
      if (err.code !== 'AUTH_TOKEN_EXPIRED') throw err;
      res = await send((await refresh()).accessToken);
    }
    if (!res.ok) throw await errorOf(res);
    if (res.status === 204) return schema.parse(undefined);
    let json: unknown;
    try {
      json = await res.json();
    } catch (e) {
      // The connection was cut while the body was on its way (a replica killed mid-response).
      if (isNetworkError(e) || (e as Error)?.name === 'TimeoutError')
        throw new AppError('OFFLINE', `${method} ${path}: response cut short: ${(e as Error).message}`, { cause: e });
      throw e;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success)
      throw new AppError('INTERNAL', `unexpected response from ${method} ${path}: ${parsed.error.message}`);
    return parsed.data;
  }

  async function errorOf(res: Response): Promise<AppError> {
    // A body cut short still leaves the status to go by.
    const text = await res.text().catch(() => '');
    try {
      const body = ErrorBody.safeParse(JSON.parse(text));
      if (body.success && isErrorCode(body.data.error.code))
        return new AppError(body.data.error.code, body.data.error.message, {
          userMessage: body.data.error.message,
          ...(body.data.error.details ? { details: body.data.error.details } : {}),
        });
    } catch {
      // not JSON: fall through
    }
    if (res.status === 401) return new AppError('AUTH_INVALID_TOKEN', `HTTP 401: ${text.slice(0, 200)}`);
    if (res.status >= 500) return new AppError('SERVICE_UNAVAILABLE', `HTTP ${res.status}: ${text.slice(0, 200)}`);
    return new AppError('BAD_REQUEST', `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }

  // Events socket ----------------------------------------------------------------------------
  let socket: WebSocket | null = null;
  let socketAttempt = 0;
  let socketTimer: NodeJS.Timeout | null = null;
  function eventsUrl(): string {
    const u = new URL('/v1/events', config.apiUrl);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.toString();
  }
  function scheduleReconnect(): void {
    if (closed || !tokens || socketTimer) return;
    socketTimer = setTimeout(
      () => {
        socketTimer = null;
        connectEvents();
      },
      backoffDelay(socketAttempt++, baseMs, maxMs, random),
    );
    socketTimer.unref();
  }
  function connectEvents(): void {
    if (closed || !tokens || socket) return;
    const ws = new WebSocket(eventsUrl());
    socket = ws;
    let readyUserId: string | null = null;
    ws.on('open', () => {
      accessToken().then(
        (token) => ws.send(JSON.stringify({ type: 'auth', token })),
        () => ws.close(),
      );
    });
    ws.on('message', (data) => {
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        return;
      }
      const parsed = CloudEvent.safeParse(msg);
      if (!parsed.success) return;
      if (parsed.data.type === 'ready') {
        socketAttempt = 0;
        readyUserId = parsed.data.userId;
        setOnline(true);
      }
      // The server may have missed events for us: re-read everything, exactly as after `ready`.
      if (parsed.data.type === 'resync' && readyUserId)
        return events.emit('event', { type: 'ready', userId: readyUserId });
      events.emit('event', parsed.data);
    });
    ws.on('error', () => {
      // 'close' follows and schedules the reconnect.
    });
    ws.on('close', () => {
      if (socket === ws) socket = null;
      scheduleReconnect();
    });
  }
  function disconnectEvents(): void {
    if (socketTimer) clearTimeout(socketTimer);
    socketTimer = null;
    socketAttempt = 0;
    const ws = socket;
    socket = null;
    ws?.close();
  }

  async function signedIn(t: Tokens): Promise<void> {
    tokens = t;
    pendingConfirmation = null;
    await persist(t);
    emitSession();
    connectEvents();
  }

  return {
    events,
    state,
    checkOnline,
    /** Restores the session from the SecretStore (refreshes the tokens); false when there is none. */
    async restore(): Promise<boolean> {
      const raw = await secretStore.get(SESSION_KEY);
      if (!raw) return false;
      const saved = JSON.parse(raw) as { username: string; refreshToken: string };
      try {
        await signedIn(await auth.refresh(saved.username, saved.refreshToken));
        return true;
      } catch (e) {
        if (AppError.is(e, 'OFFLINE')) {
          // Keep the refresh token: we try again when back online.
          tokens = {
            username: saved.username,
            refreshToken: saved.refreshToken,
            accessToken: '',
            idToken: '',
            expiresAt: 0,
          };
          setOnline(false);
          emitSession();
          return true;
        }
        await persist(null);
        return false;
      }
    },
    async signUp(email: string, password: string) {
      const r = await auth.signUp(email, password);
      pendingConfirmation = r.needsConfirmation ? email : null;
      emitSession();
      return r;
    },
    async confirm(email: string, code: string) {
      await auth.confirm(email, code);
      pendingConfirmation = null;
      emitSession();
    },
    resendCode: (email: string) => auth.resendCode(email),
    async signIn(email: string, password: string) {
      try {
        await signedIn(await auth.signIn(email, password));
      } catch (e) {
        if (AppError.is(e, 'AUTH_NOT_CONFIRMED')) {
          pendingConfirmation = email;
          emitSession();
        }
        throw e;
      }
    },
    async signOut() {
      disconnectEvents();
      tokens = null;
      await persist(null);
      emitSession();
    },
    forgotPassword: (email: string) => auth.forgotPassword(email),
    resetPassword: (email: string, code: string, password: string) => auth.resetPassword(email, code, password),
    /** Current tokens, for tests and the sync engine's own calls. */
    tokens: () => tokens,
    request,
    refresh,
    connectEvents,
    api: {
      me: () => request('GET', '/v1/me', Me),
      createGeneration: (req: GenerateRequest, idempotencyKey: string) =>
        request('POST', '/v1/generations', Generation, { body: req, idempotencyKey }),
      getGeneration: (id: string) => request('GET', `/v1/generations/${encodeURIComponent(id)}`, Generation),
      cancelGeneration: (id: string) =>
        request('POST', `/v1/generations/${encodeURIComponent(id)}/cancel`, z.unknown()),
      getImage: (id: string) => request('GET', `/v1/images/${encodeURIComponent(id)}`, Image),
      /** One page of the cloud gallery, newest first (thumbnail URLs only). */
      listImages: (q: { limit?: number; cursor?: string } = {}) => {
        const params = new URLSearchParams();
        if (q.limit !== undefined) params.set('limit', String(q.limit));
        if (q.cursor) params.set('cursor', q.cursor);
        const qs = params.toString();
        return request('GET', `/v1/images${qs ? `?${qs}` : ''}`, ImageList);
      },
      checkout: () => request('POST', '/v1/billing/checkout', UrlResponse, { body: { plan: 'pro' } }),
      portal: () => request('POST', '/v1/billing/portal', UrlResponse, { body: {} }),
      /** 503 BILLING_DISABLED when the server runs without Stripe. */
      billingSubscription: () => request('GET', '/v1/billing/subscription', BillingSubscription),
      models: () => request('GET', '/v1/models', ModelList),
      /** DELETE /v1/me: the cloud checks the email and password again before it deletes anything. */
      deleteAccount: (email: string, password: string) =>
        request('DELETE', '/v1/me', AccountDeletion, { body: { email, password } }),
      /** GET /v1/me/export: a presigned, expiring URL to a zip of the account's images and metadata. */
      exportData: () => request('GET', '/v1/me/export', AccountExport),
      /** GET /v1/usage/daily: cloud images per day for the current and previous period (the Account chart). */
      usageDaily: () => request('GET', '/v1/usage/daily', UsageDaily),
    },
    /**
     * Streams a presigned URL into `file` (created new; removed again on failure), reporting bytes
     * as they arrive. No Authorization header: the URL is the credential.
     */
    async downloadTo(
      url: string,
      file: string,
      onProgress: (receivedBytes: number, totalBytes: number | null) => void = () => undefined,
    ): Promise<number> {
      return (await objects(() => transfer.getToFile(url, file, { onProgress, timeoutMs: 30 * 60_000 }))).size;
    },
    /**
     * GET a presigned URL into `file` with the SHA-256 of what was written (decision 0162); with
     * `fsync` the bytes are on disk when it resolves.
     */
    downloadFile: (
      url: string,
      file: string,
      o: { fsync?: boolean; onProgress?: (receivedBytes: number, totalBytes: number | null) => void } = {},
    ) => objects(() => transfer.getToFile(url, file, { ...o, timeoutMs: 30 * 60_000 })),
    /** Downloads bytes from a presigned URL (no Authorization header: the URL is the credential). */
    download: (url: string): Promise<Uint8Array> => objects(() => transfer.get(url, { timeoutMs: 120_000 })),
    /** PUT bytes to a presigned URL with the headers it was signed with. */
    upload: (url: string, headers: Record<string, string>, body: Uint8Array) =>
      objects(() => transfer.put(url, headers, body, { timeoutMs: 300_000 })),
    /**
     * PUT a file to a presigned URL; it must still be exactly `expect` (size and SHA-256, checked
     * before a byte is sent: BAD_REQUEST when it changed on disk).
     */
    uploadFile: (
      url: string,
      headers: Record<string, string>,
      file: string,
      expect: { size: number; sha256: string },
    ) => objects(() => transfer.putFile(url, headers, file, expect, { timeoutMs: 300_000 })),
    close(): void {
      closed = true;
      transfer.close();
      disconnectEvents();
      if (probeTimer) clearTimeout(probeTimer);
      probeTimer = null;
    },
  };
}
