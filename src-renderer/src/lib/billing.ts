/** What Upgrade and Manage subscription say on a server without billing (no configuration hints). */
export const BILLING_OFF = 'Upgrades are not available on this server.';
