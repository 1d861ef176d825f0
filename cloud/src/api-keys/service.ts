/** Creating, listing and revoking a user's API keys (the request side of /v1/api-keys). */
import {
  AppError,
  MAX_API_KEYS_PER_USER,
  newId,
  type ApiKey,
  type CreateApiKeyBody,
  type CreatedApiKey,
} from '@atelier/common';
import type { Pool } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import { newApiKey } from './key-format.ts';
import { countLiveKeys, insertKey, listKeys, revokeKey } from './repository.ts';

export function createApiKeyService(pool: Pool) {
  return {
    /** The whole key is in this answer and nowhere else, ever. */
    async create(userId: string, body: CreateApiKeyBody): Promise<CreatedApiKey> {
      const made = newApiKey();
      // lockUser: two concurrent creations cannot both pass the count check.
      const key = await withUserTx(
        pool,
        userId,
        async (tx) => {
          if ((await countLiveKeys(tx, userId)) >= MAX_API_KEYS_PER_USER)
            throw new AppError('API_KEYS_LIMIT_REACHED', `At most ${MAX_API_KEYS_PER_USER} live API keys per account`, {
              details: { limit: MAX_API_KEYS_PER_USER },
            });
          return insertKey(tx, {
            id: newId('key'),
            userId,
            name: body.name,
            prefix: made.prefix,
            hash: made.hash,
            scopes: body.scopes,
          });
        },
        { lockUser: true },
      );
      return { ...key, key: made.key };
    },
    list(userId: string): Promise<ApiKey[]> {
      return withUserTx(pool, userId, (tx) => listKeys(tx, userId));
    },
    /** NOT_FOUND for an unknown, already revoked or another user's key (indistinguishable on purpose). */
    async revoke(userId: string, id: string): Promise<void> {
      const done = await withUserTx(pool, userId, (tx) => revokeKey(tx, userId, id));
      if (!done) throw new AppError('NOT_FOUND', 'No such API key');
    },
  };
}
export type ApiKeyService = ReturnType<typeof createApiKeyService>;
