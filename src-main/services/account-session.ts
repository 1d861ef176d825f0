/**
 * What the desktop knows about the signed-in account: the last `/v1/me` (plan and usage), the
 * billing state and the cloud models, refreshed on sign-in, when back online and when the cloud
 * says the plan changed. Every change is announced as `account:changed`.
 */
import { AppError, type AccountState, type BillingStatus, type CloudModel, type Me, type Usage } from '@atelier/common';
import type { Clock } from './clock.ts';
import type { CloudClient } from './cloud-client.ts';
import type { Emit } from './event-bus.ts';

/** Said instead of the server's configuration hint (which names environment variables). */
export const BILLING_OFF_MESSAGE = 'Upgrades are not available on this server.';

/** Unit: ms. A plan/usage figure older than this is refreshed in the background before routing. */
const ME_STALE_MS = 30_000;

/** The cloud client, or SERVICE_UNAVAILABLE in local-only mode (no cloud configured). */
export function requireCloud(cloud: CloudClient | null): CloudClient {
  if (!cloud)
    throw new AppError('SERVICE_UNAVAILABLE', 'no cloud is configured', {
      userMessage: 'Atelier Cloud is not configured in this build.',
    });
  return cloud;
}

export interface AccountSessionOptions {
  cloud: CloudClient | null;
  clock: Clock;
  emit: Emit;
  log: (msg: string, err?: unknown) => void;
}

export type AccountSession = ReturnType<typeof createAccountSession>;

export function createAccountSession({ cloud, clock, emit, log }: AccountSessionOptions) {
  let me: Me | null = null;
  /** Unit: ms since epoch of the last successful GET /v1/me. */
  let meAt = 0;
  let billing: BillingStatus | null = null;
  let cloudModels: CloudModel[] = [];

  function state(): AccountState {
    const s = cloud?.state();
    return {
      signedIn: s?.signedIn ?? false,
      email: s?.email ?? null,
      plan: s?.signedIn ? (me?.plan ?? null) : null,
      usage: s?.signedIn ? (me?.usage ?? null) : null,
      online: s?.online ?? false,
      pendingConfirmation: s?.pendingConfirmation ?? null,
      billing: s?.signedIn ? billing : null,
      cloudModels,
    };
  }
  const emitChanged = () => emit('account:changed', state());

  async function refreshMe(): Promise<void> {
    if (!cloud?.state().signedIn) {
      me = null;
      return;
    }
    try {
      me = await cloud.api.me();
      meAt = clock.now().getTime();
      emitChanged();
    } catch (e) {
      if (!AppError.is(e, 'OFFLINE')) log('could not fetch the account', e);
      return;
    }
    // What the plan allows and whether upgrades exist here: known before any click.
    await Promise.all([refreshBilling(), refreshCloudModels()]);
    emitChanged();
  }
  async function refreshBilling(): Promise<void> {
    if (!cloud) return;
    try {
      const sub = await cloud.api.billingSubscription();
      billing = { available: true, hasSubscription: sub.hasCustomer && sub.status !== null };
    } catch (e) {
      if (AppError.is(e, 'BILLING_DISABLED')) billing = { available: false, hasSubscription: false };
      else if (!AppError.is(e, 'OFFLINE')) log('could not fetch the billing state', e);
    }
  }
  async function refreshCloudModels(): Promise<void> {
    if (!cloud) return;
    try {
      cloudModels = (await cloud.api.models()).items;
    } catch (e) {
      if (!AppError.is(e, 'OFFLINE')) log('could not fetch the cloud models', e);
    }
  }

  return {
    state,
    emitChanged,
    refreshMe,
    /** The last `/v1/me`, or null (signed out, or not fetched yet). */
    me: () => me,
    cloudModels: () => cloudModels,
    /** GET /v1/me now (the `account:me` channel): errors reach the caller. */
    async fetchMe(): Promise<Me> {
      me = await requireCloud(cloud).api.me();
      emitChanged();
      return me;
    },
    /**
     * Usage can change elsewhere (another device, the admin CLI): a stale figure is refreshed in
     * the background, and the account event that follows makes the screen ask again.
     */
    refreshIfStale(): void {
      const s = cloud?.state();
      if (s?.signedIn && s.online && clock.now().getTime() - meAt > ME_STALE_MS) {
        meAt = clock.now().getTime();
        void refreshMe();
      }
    },
    /** The cloud pushed a new usage figure (`usage.changed`). */
    usageChanged(usage: Usage): void {
      if (!me) return;
      me = { ...me, usage };
      emitChanged();
    },
    /** Signed out or account deleted: forget the account's figures. */
    forget(): void {
      me = null;
      billing = null;
      emitChanged();
    },
    /** Billing calls: BILLING_DISABLED becomes one plain sentence, and the state remembers it. */
    async billingCall<T>(fn: () => Promise<T>): Promise<T> {
      try {
        return await fn();
      } catch (e) {
        if (AppError.is(e, 'BILLING_DISABLED')) {
          billing = { available: false, hasSubscription: false };
          emitChanged();
          throw new AppError('BILLING_DISABLED', 'billing is off on this server', { userMessage: BILLING_OFF_MESSAGE });
        }
        throw e;
      }
    },
  };
}
