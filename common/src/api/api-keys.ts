/**
 * API keys (issue 16): long-lived credentials a user creates for scripts and other services. A
 * key is `atl_` followed by 49 base62 characters (a 256-bit secret and a 6-character checksum);
 * it is shown once, when created, and stored only as a hash (docs/decisions/0160). Keys are
 * managed with a signed-in session only; a key authenticates the /v1 routes that declare one of
 * its scopes. The cloud declares these as route schemas; the desktop parses responses with them.
 */
import { z } from 'zod';
import { storable } from '../text.ts';

/** Everything a key can be allowed to do. A route declares the one scope it needs. */
export const API_KEY_SCOPES = ['generate', 'gallery:read', 'gallery:write', 'account:read'] as const;
export const ApiKeyScope = z.enum(API_KEY_SCOPES);
export type ApiKeyScope = z.infer<typeof ApiKeyScope>;

/** What each scope allows, in words a person choosing scopes understands (UI, OpenAPI, docs). */
export const API_KEY_SCOPE_DESCRIPTIONS: Record<ApiKeyScope, string> = {
  generate: 'Start cloud generations (counts against your plan), read and cancel them',
  'gallery:read': 'List and download your cloud images and boards, read the sync feed',
  'gallery:write': 'Star, move, delete and upload images; create, rename and delete boards',
  'account:read': 'Read your plan and usage (GET /v1/me)',
};

/** The fixed start of every key: it makes a leaked key recognisable to secret scanners. */
export const API_KEY_PREFIX = 'atl_';
/** How many characters after `atl_` are kept and shown to tell keys apart. */
export const API_KEY_PREFIX_CHARS = 8;
/** The whole shape of a key; anything else is refused before any lookup. */
export const API_KEY_PATTERN = /^atl_[0-9A-Za-z]{49}$/;
/** How many live (not revoked) keys one account may hold. */
export const MAX_API_KEYS_PER_USER = 25;

export const ApiKeyIdSchema = z.string().regex(/^key_[0-9A-Z]{22}$/, 'must be a key_ id');
export const ApiKeyIdParams = z.object({ id: ApiKeyIdSchema });

const isoDate = z.string().datetime({ offset: true });

export const CreateApiKeyBody = z
  .object({
    name: storable(
      z.string().trim().min(1, 'give the key a name').max(100, 'name must be at most 100 characters'),
      'name',
    ),
    scopes: z
      .array(ApiKeyScope)
      .min(1, 'choose at least one scope')
      .max(API_KEY_SCOPES.length)
      .refine((s) => new Set(s).size === s.length, 'each scope at most once'),
  })
  .strict();
export type CreateApiKeyBody = z.infer<typeof CreateApiKeyBody>;

/** A key as listed: never the secret, only the prefix that tells it apart. */
export const ApiKey = z.object({
  id: ApiKeyIdSchema,
  name: z.string(),
  /** `atl_` and the first 8 characters of the key. */
  prefix: z.string(),
  scopes: z.array(ApiKeyScope),
  createdAt: isoDate,
  /** Unit: accurate to about a minute (updates are throttled). null: never used. */
  lastUsedAt: isoDate.nullable(),
});
export type ApiKey = z.infer<typeof ApiKey>;

/** The answer to a creation: the only time the whole key is ever sent. */
export const CreatedApiKey = ApiKey.extend({ key: z.string().regex(API_KEY_PATTERN) });
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

export const ApiKeyList = z.object({ items: z.array(ApiKey) });
export type ApiKeyList = z.infer<typeof ApiKeyList>;
