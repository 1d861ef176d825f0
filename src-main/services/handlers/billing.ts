/** Upgrade (Stripe Checkout) and manage (the billing portal), opened in the system browser. */
import type { IpcHandlers } from '@atelier/common';
import { requireCloud, type AccountSession } from '../account-session.ts';
import type { CloudClient } from '../cloud-client.ts';

export interface BillingHandlersDeps {
  cloud: CloudClient | null;
  account: Pick<AccountSession, 'billingCall'>;
  /** Opens a URL in the system browser (Electron); the browser host leaves it to the page. */
  openExternal?: ((url: string) => Promise<void>) | undefined;
}

export function createBillingHandlers(
  deps: BillingHandlersDeps,
): Pick<IpcHandlers, 'billing:upgrade' | 'billing:manage'> {
  return {
    'billing:upgrade': async () => {
      const r = await deps.account.billingCall(() => requireCloud(deps.cloud).api.checkout());
      await deps.openExternal?.(r.url);
      return r;
    },
    'billing:manage': async () => {
      const r = await deps.account.billingCall(() => requireCloud(deps.cloud).api.portal());
      await deps.openExternal?.(r.url);
      return r;
    },
  };
}
