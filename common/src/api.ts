/**
 * The Atelier Cloud HTTP and WebSocket contract. The API declares these as its route schemas
 * (and so its OpenAPI document); the desktop parses every response with them.
 */
import { z } from 'zod';
import { ERROR_CODE_LIST } from './errors.ts';
import { GenerateRequest, ModelId, ResolvedGenerateRequest } from './generate.ts';
import { ImageMetadata } from './metadata.ts';
import { PlanId, PlanSchema } from './plans.ts';
import { storable, storableString } from './text.ts';

const prefixed = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[0-9A-Z]{22}$`), `must be a ${prefix}_ id`);
/** Route parameters `:id`: checked by prefix and shape before anything reaches SQL. */
export const GenerationIdParams = z.object({ id: prefixed('gen') });
export const ImageIdParams = z.object({ id: prefixed('img') });
export const BoardIdParams = z.object({ id: prefixed('brd') });
export const GenerationIdSchema = prefixed('gen');
export const ImageIdSchema = prefixed('img');
export const BoardIdSchema = prefixed('brd');
export const JobIdSchema = prefixed('job');
const isoDate = z.string().datetime({ offset: true });

export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(ERROR_CODE_LIST as [string, ...string[]]),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

export const Usage = z.object({
  used: z.number().int(),
  limit: z.number().int(),
  periodStart: isoDate,
  periodEnd: isoDate,
});
export type Usage = z.infer<typeof Usage>;

/** Synced gallery storage (issue 13). */
export const StorageUsage = z.object({
  /** Unit: bytes of live images and thumbnails plus uploads in progress. */
  used: z.number().int(),
  /** Unit: bytes the plan allows (plans.storageBytes). */
  limit: z.number().int(),
});
export type StorageUsage = z.infer<typeof StorageUsage>;

export const Me = z.object({
  id: z.string(),
  email: z.string().nullable(),
  plan: PlanId,
  usage: Usage,
  storage: StorageUsage.optional(),
});
export type Me = z.infer<typeof Me>;

export const PlansResponse = z.object({ plans: z.array(PlanSchema) });

export const GENERATION_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export const GenerationStatus = z.enum(GENERATION_STATUSES);
export type GenerationStatus = z.infer<typeof GenerationStatus>;

export const Generation = z.object({
  id: GenerationIdSchema,
  status: GenerationStatus,
  params: ResolvedGenerateRequest,
  priority: z.number().int(),
  /** Unit: completed denoising steps over all images of the batch. */
  progress: z.object({ step: z.number().int(), total: z.number().int() }),
  errorCode: z.string().nullable(),
  attempts: z.number().int(),
  imageIds: z.array(ImageIdSchema),
  createdAt: isoDate,
  startedAt: isoDate.nullable(),
  finishedAt: isoDate.nullable(),
});
export type Generation = z.infer<typeof Generation>;

export const CreateGenerationBody = GenerateRequest;

export const PageQuery = z.object({
  cursor: storableString('cursor', 200).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export const GenerationList = z.object({ items: z.array(Generation), nextCursor: z.string().nullable() });

export const Board = z.object({
  id: BoardIdSchema,
  name: z.string().min(1).max(100),
  imageCount: z.number().int(),
  createdAt: isoDate,
  updatedAt: isoDate,
});
export type Board = z.infer<typeof Board>;
export const CreateBoardBody = z
  .object({ name: storable(z.string().trim().min(1, 'name must not be empty').max(100), 'name') })
  .strict();
export const UpdateBoardBody = CreateBoardBody;
export const DeleteBoardQuery = z.object({ images: z.enum(['keep', 'delete']).default('keep') });
export const BoardList = z.object({ items: z.array(Board) });

export const Image = z.object({
  id: ImageIdSchema,
  generationId: GenerationIdSchema.nullable(),
  boardId: BoardIdSchema.nullable(),
  starred: z.boolean(),
  width: z.number().int(),
  height: z.number().int(),
  metadata: ImageMetadata,
  /** Unit: bytes of the PNG. */
  size: z.number().int(),
  sha256: z.string(),
  createdAt: isoDate,
  updatedAt: isoDate,
  /** Presigned GET URLs, valid for at most 15 minutes; present on single-image reads. */
  url: z.string().url().optional(),
  thumbUrl: z.string().url().optional(),
});
export type Image = z.infer<typeof Image>;

export const ImageListQuery = PageQuery.extend({
  board: z.union([BoardIdSchema, z.literal('none')]).optional(),
  starred: z.enum(['true', 'false']).optional(),
  q: storableString('q', 200).optional(),
});
export const ImageList = z.object({ items: z.array(Image), nextCursor: z.string().nullable() });
export const UpdateImageBody = z
  .object({ starred: z.boolean().optional(), boardId: BoardIdSchema.nullable().optional() })
  .strict()
  .refine((b) => b.starred !== undefined || b.boardId !== undefined, 'give starred or boardId');

export const CheckoutBody = z.object({ plan: z.literal('pro').default('pro') }).strict();
export const UrlResponse = z.object({ url: z.string().url() });

export const ModelInfo = z.object({ id: ModelId, name: z.string(), plans: z.array(PlanId), default: z.boolean() });
export const ModelList = z.object({ items: z.array(ModelInfo) });

/** Server → client messages on `/v1/events`. */
export const CloudEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), userId: z.string() }),
  /**
   * The server may have missed events for this socket (its database listener reconnected):
   * re-read the state (usage, jobs, gallery) as after `ready`.
   */
  z.object({ type: z.literal('resync') }),
  z.object({ type: z.literal('generation.queued'), generation: Generation }),
  z.object({ type: z.literal('generation.started'), generationId: GenerationIdSchema }),
  z.object({
    type: z.literal('generation.progress'),
    generationId: GenerationIdSchema,
    step: z.number().int(),
    total: z.number().int(),
    /** Optional low-resolution preview as a data: URL. */
    preview: z.string().optional(),
  }),
  z.object({
    type: z.literal('generation.succeeded'),
    generationId: GenerationIdSchema,
    imageIds: z.array(ImageIdSchema),
  }),
  z.object({ type: z.literal('generation.failed'), generationId: GenerationIdSchema, errorCode: z.string() }),
  z.object({ type: z.literal('generation.canceled'), generationId: GenerationIdSchema }),
  z.object({ type: z.literal('usage.changed'), usage: Usage }),
  z.object({ type: z.literal('plan.changed'), plan: PlanId }),
  z.object({ type: z.literal('gallery.changed'), imageIds: z.array(ImageIdSchema) }),
]);
export type CloudEvent = z.infer<typeof CloudEvent>;

/** Client → server messages on `/v1/events`: the first one must authenticate. */
export const CloudEventClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auth'), token: z.string().min(1) }),
  z.object({ type: z.literal('ping') }),
]);
