/**
 * API keys of the signed-in cloud account (issue 16): list, create (the whole key comes back once,
 * for the panel to show and copy; it is never stored on this device), revoke. The cloud takes
 * these calls with the session's token only, never with a key.
 */
import { ApiKeyList, CreatedApiKey, type IpcHandlers } from '@atelier/common';
import { z } from 'zod';
import { requireCloud } from '../account-session.ts';
import type { CloudClient } from '../cloud-client.ts';

export interface ApiKeysHandlersDeps {
  cloud: CloudClient | null;
}

export function createApiKeysHandlers(
  deps: ApiKeysHandlersDeps,
): Pick<IpcHandlers, 'apiKeys:list' | 'apiKeys:create' | 'apiKeys:revoke'> {
  return {
    'apiKeys:list': () => requireCloud(deps.cloud).request('GET', '/v1/api-keys', ApiKeyList),
    'apiKeys:create': (input) =>
      requireCloud(deps.cloud).request('POST', '/v1/api-keys', CreatedApiKey, { body: input }),
    'apiKeys:revoke': async ({ id }) => {
      await requireCloud(deps.cloud).request('DELETE', `/v1/api-keys/${encodeURIComponent(id)}`, z.unknown());
      return { ok: true } as const;
    },
  };
}
