/**
 * The renderer ↔ main contract. Every channel has an input and an output schema; the main
 * process validates inputs at registration, the renderer can validate outputs. `IpcHandlers`
 * makes a missing handler a compile error (see contract.test-d.ts).
 */
import { z } from 'zod';
import { Me, StorageUsage, Usage } from '../api.ts';
import { ApiKeyIdSchema, ApiKeyList, CreateApiKeyBody, CreatedApiKey } from '../api/api-keys.ts';
import { DismissedNotice, UsageChartData } from '../api/usage.ts';
import { GenerateRequest, InputImageRef, RunTarget, Scheduler } from '../generate.ts';
import { ImageMetadata } from '../metadata.ts';
import { PlanId } from '../plans.ts';
import {
  CreateWebhookBody,
  UpdateWebhookBody,
  WebhookDelivery,
  WebhookDeliveryIdSchema,
  WebhookDeliveryPage,
  WebhookEndpoint,
  WebhookEndpointIdSchema,
  WebhookEndpointList,
  WebhookEndpointWithSecret,
} from '../api/webhooks.ts';

const Id = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[0-9A-Z]{22}$`));
export const LocalJobId = Id('job');
export const LocalImageId = Id('img');
export const LocalBoardId = Id('brd');

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'canceled', 'waiting_online'] as const;
export const LocalJob = z.object({
  id: LocalJobId,
  request: GenerateRequest,
  target: z.enum(['local', 'cloud']),
  /** Why the router chose this target, shown to the user. */
  reason: z.string(),
  state: z.enum(JOB_STATES),
  position: z.number().int(),
  step: z.number().int(),
  total: z.number().int(),
  seed: z.number().int().nullable(),
  imageIds: z.array(LocalImageId),
  error: z.object({ code: z.string(), message: z.string(), offerCloudRetry: z.boolean() }).nullable(),
  cloudGenerationId: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type LocalJob = z.infer<typeof LocalJob>;

/** Whether a local job fits the memory this computer (or its GPU) has; computed by the engine. */
export const MemoryEstimate = z.object({
  verdict: z.enum(['ok', 'warn', 'refuse']),
  /** Unit: bytes the job is estimated to need at its peak. */
  neededBytes: z.number().int().nonnegative(),
  /** Unit: bytes the engine may use on this machine (RAM or GPU memory). */
  availableBytes: z.number().int().nonnegative(),
  /** What to tell the person; null when the verdict is ok. */
  message: z.string().nullable(),
});
export type MemoryEstimate = z.infer<typeof MemoryEstimate>;

/**
 * What the Generate screen can offer before the click, beyond the route itself. `action` names the
 * one thing that unblocks a refused run; `askCloud` asks once whether Automatic may use metered
 * cloud runs (the answer is remembered in Settings.autoCloud).
 */
export const RouteDecision = z.object({
  target: z.enum(['local', 'cloud']),
  provider: z.string().nullable(),
  reason: z.string(),
  warning: z.string().nullable(),
  /** For cloud runs: e.g. "uses 4 of your 37 cloud images left this month". */
  cost: z.string().nullable(),
  /** Set when the request cannot be accepted as it stands: the code Generate would be refused with. */
  blocked: z.string().nullable().default(null),
  /** The one-click way out of a block: run locally instead, run in the cloud instead, upgrade, sign in. */
  action: z.enum(['run_local', 'run_cloud', 'upgrade', 'sign_in', 'install_model']).nullable().default(null),
  /** Automatic would run this in the metered cloud and the person has not said yet whether it may. */
  askCloud: z.boolean().default(false),
  /** The local memory check, when the job would run on this computer. */
  memory: MemoryEstimate.nullable().default(null),
});
export type RouteDecision = z.infer<typeof RouteDecision>;

export const LibraryImage = z.object({
  id: LocalImageId,
  boardId: LocalBoardId.nullable(),
  starred: z.boolean(),
  origin: z.enum(['local', 'cloud', 'imported']),
  width: z.number().int(),
  height: z.number().int(),
  metadata: ImageMetadata.nullable(),
  /** app:// (Electron) or http://127.0.0.1 (browser host) URLs the renderer can load. */
  url: z.string(),
  thumbUrl: z.string(),
  createdAt: z.string(),
  /**
   * Where the image lives (issue 13): only on this computer, waiting for or in its upload to the
   * signed-in account, or in the cloud. Absent in local-only mode.
   */
  cloud: z.enum(['local', 'uploading', 'cloud']).optional(),
  /**
   * False for an image synced down from the cloud whose full PNG is not on this computer yet
   * (issue 13: thumbnails at once, full images in the background): `url` does not load until
   * `library:download` fetched it. Absent or true: the file is here.
   */
  downloaded: z.boolean().optional(),
});
export type LibraryImage = z.infer<typeof LibraryImage>;

export const LibraryQuery = z.object({
  boardId: z.union([LocalBoardId, z.literal('none')]).optional(),
  starred: z.boolean().optional(),
  search: z.string().max(200).optional(),
  cursor: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(500).default(100),
});
export const LibraryPage = z.object({
  items: z.array(LibraryImage),
  nextCursor: z.string().nullable(),
  total: z.number().int(),
});

export const LocalBoard = z.object({ id: LocalBoardId, name: z.string(), imageCount: z.number().int() });

export const InstalledModel = z.object({
  id: z.string(),
  name: z.string(),
  path: z.string(),
  sizeBytes: z.number().int(),
  sha256: z.string(),
  isDefault: z.boolean(),
  /** A test fixture built by the project: random weights, so it draws noise. Shown wherever models appear. */
  fixture: z.boolean().optional(),
  /** False for models shipped with Atelier or the repository's fixtures: they cannot be removed here. */
  removable: z.boolean().optional(),
  /** What the model can draw, from its folder's atelier.json; absent or null when it does not say. */
  description: z.string().nullable().optional(),
  /** The size the model was trained at; a request without width/height gets it. Unit: pixels. */
  nativeSize: z.object({ width: z.number().int(), height: z.number().int() }).nullable().optional(),
  /** Caption words the model knows, by kind ("shapes", "colours", "positions", …); null = open vocabulary. */
  vocabulary: z.record(z.string(), z.array(z.string())).nullable().optional(),
  /** Prompts that show what the model does. */
  examples: z.array(z.string()).optional(),
});
export type InstalledModel = z.infer<typeof InstalledModel>;
export const ModelDownload = z.object({
  id: z.string(),
  url: z.string(),
  received: z.number().int(),
  total: z.number().int().nullable(),
  state: z.enum(['downloading', 'verifying', 'done', 'failed', 'canceled']),
  error: z.string().nullable(),
  /** Set when the download installs a catalogue entry. */
  catalogueId: z.string().optional(),
  name: z.string().optional(),
});
export type ModelDownload = z.infer<typeof ModelDownload>;

/** A real ONNX Stable Diffusion export the app offers to download, file by file, from its repository. */
export const CatalogueModel = z.object({
  id: z.string(),
  name: z.string(),
  /** The Hugging Face repository, e.g. "onnxruntime/sd-turbo". */
  repo: z.string(),
  /** The pinned commit the files come from. */
  revision: z.string(),
  /** Unit: bytes of all files to download. */
  sizeBytes: z.number().int().nonnegative(),
  licence: z.string(),
  licenceUrl: z.string().nullable(),
  /** What it needs to run well, in words ("6 GB GPU, or minutes per image on a CPU"). */
  hardware: z.string(),
  description: z.string().nullable(),
  installed: z.boolean(),
});
export type CatalogueModel = z.infer<typeof CatalogueModel>;

/** A model Atelier Cloud serves, with the plans that may use it (GET /v1/models). */
export const CloudModel = z.object({
  id: z.string(),
  name: z.string(),
  plans: z.array(PlanId),
  default: z.boolean(),
});
export type CloudModel = z.infer<typeof CloudModel>;

/**
 * What the server says about billing. `available: false` when the server runs without Stripe
 * (BILLING_DISABLED): Upgrade and Manage subscription say so from the start.
 */
export const BillingStatus = z.object({
  available: z.boolean(),
  /** Whether the user has a Stripe customer the portal can open. */
  hasSubscription: z.boolean(),
});
export type BillingStatus = z.infer<typeof BillingStatus>;

export const ProviderStatus = z.object({
  name: z.string(),
  usable: z.boolean(),
  gpu: z.boolean(),
  reason: z.string().nullable(),
});

export const AccountState = z.object({
  signedIn: z.boolean(),
  email: z.string().nullable(),
  plan: PlanId.nullable(),
  usage: Usage.nullable(),
  online: z.boolean(),
  pendingConfirmation: z.string().nullable(),
  /** Null while unknown (signed out, offline, not fetched yet). */
  billing: BillingStatus.nullable().default(null),
  /** The cloud's models and the plans each is on; empty while unknown. */
  cloudModels: z.array(CloudModel).default([]),
});
export type AccountState = z.infer<typeof AccountState>;

export const Settings = z.object({
  runMode: RunTarget,
  modelsDir: z.string(),
  defaultModel: z.string().nullable(),
  threads: z.number().int().min(0).max(256),
  syncEnabled: z.boolean(),
  autoUpdate: z.boolean(),
  theme: z.enum(['system', 'light', 'dark']),
  defaultScheduler: Scheduler,
  /**
   * Whether Automatic may send a run to the metered cloud. 'ask' until the person answers once;
   * signing in never turns free local runs into metered ones silently.
   */
  autoCloud: z.enum(['ask', 'allow', 'never']),
});
export type Settings = z.infer<typeof Settings>;

/**
 * Unit: bytes. The largest picture a person can drop or pick as a starting image; larger ones are
 * refused (PAYLOAD_TOO_LARGE) before they are decoded. 20 MB holds a full-size phone photo.
 */
export const MAX_PICTURE_BYTES = 20 * 1024 * 1024;
/** A picture's bytes across IPC: base64, so the Electron channel and the browser host's JSON carry the same thing. */
const PictureBytes = z
  .string()
  .min(1, 'the picture is empty')
  .max(Math.ceil(MAX_PICTURE_BYTES / 3) * 4, 'the picture is larger than 20 MB')
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'the picture must be base64');

const email = z.string().trim().email('enter a valid email address');
const password = z.string().min(1, 'enter a password').max(256);
const Empty = z.object({}).strict();
const Ok = z.object({ ok: z.literal(true) });

export const ipcContract = {
  'app:info': {
    input: Empty,
    output: z.object({
      version: z.string(),
      platform: z.string(),
      shell: z.enum(['electron', 'browser']),
      apiUrl: z.string().nullable(),
      /** Development stack only: the local mailbox page where sign-up and reset codes arrive. */
      mailboxUrl: z.string().nullable().default(null),
    }),
  },
  'jobs:submit': { input: GenerateRequest, output: z.object({ jobs: z.array(LocalJob), decision: RouteDecision }) },
  'jobs:list': { input: Empty, output: z.object({ items: z.array(LocalJob) }) },
  'jobs:cancel': { input: z.object({ jobId: LocalJobId }), output: Ok },
  'jobs:retry': {
    input: z.object({ jobId: LocalJobId, target: z.enum(['local', 'cloud']).optional() }),
    output: LocalJob,
  },
  'jobs:reorder': { input: z.object({ jobId: LocalJobId, position: z.number().int().min(0) }), output: Ok },
  'router:explain': {
    input: z.object({
      target: RunTarget,
      model: z.string().optional(),
      count: z.number().int().min(1).max(16).default(1),
      /** Unit: pixels. The size decides the memory check and the plan's resolution limit. */
      width: z.number().int().min(64).max(2048).optional(),
      height: z.number().int().min(64).max(2048).optional(),
      /** The starting image, when the run starts from one: where it can run depends on it. */
      initImage: InputImageRef.optional(),
    }),
    output: RouteDecision,
  },
  'library:list': { input: LibraryQuery, output: LibraryPage },
  'library:get': { input: z.object({ id: LocalImageId }), output: LibraryImage },
  'library:update': {
    input: z.object({
      ids: z.array(LocalImageId).min(1).max(1000),
      starred: z.boolean().optional(),
      boardId: LocalBoardId.nullable().optional(),
    }),
    output: Ok,
  },
  'library:delete': {
    input: z.object({ ids: z.array(LocalImageId).min(1).max(1000) }),
    output: z.object({ undoToken: z.string() }),
  },
  'library:undoDelete': {
    input: z.object({ undoToken: z.string() }),
    output: z.object({ restored: z.number().int() }),
  },
  'library:import': {
    input: z.object({ paths: z.array(z.string()).min(1) }),
    output: z.object({
      imported: z.number().int(),
      skipped: z.array(z.object({ path: z.string(), reason: z.string() })),
    }),
  },
  'library:reveal': { input: z.object({ id: LocalImageId }), output: z.object({ path: z.string() }) },
  /**
   * The full PNG of an image synced down with its thumbnail only, fetched now ahead of the
   * background downloads (the Viewer, Use as starting image). Answers the image with
   * `downloaded: true`; IMAGE_NOT_DOWNLOADED (retryable) when offline or the download failed.
   */
  'library:download': { input: z.object({ id: LocalImageId }), output: LibraryImage },
  /**
   * A dropped or picked PNG/JPEG becomes a gallery picture (origin 'imported'; a JPEG is stored as
   * PNG) to start from; the same bytes again answer with the picture already there.
   */
  'pictures:import': {
    input: z.object({ name: z.string().trim().min(1).max(255), data: PictureBytes }),
    output: LibraryImage,
  },
  /**
   * Stores a painted inpainting mask (a PNG the size of the starting image `imageId`; white =
   * repaint) as a hidden library row, so a job and Reuse settings can name it by id (decision 0155).
   */
  'pictures:saveMask': {
    input: z.object({ imageId: LocalImageId, png: PictureBytes }),
    output: LibraryImage,
  },
  'boards:list': { input: Empty, output: z.object({ items: z.array(LocalBoard) }) },
  'boards:create': { input: z.object({ name: z.string().trim().min(1).max(100) }), output: LocalBoard },
  'boards:rename': {
    input: z.object({ id: LocalBoardId, name: z.string().trim().min(1).max(100) }),
    output: LocalBoard,
  },
  'boards:delete': { input: z.object({ id: LocalBoardId, images: z.enum(['keep', 'delete']) }), output: Ok },
  'models:list': {
    input: Empty,
    output: z.object({ items: z.array(InstalledModel), downloads: z.array(ModelDownload) }),
  },
  'models:import': {
    input: z.object({ path: z.string().min(1), mode: z.enum(['copy', 'link']).default('copy') }),
    output: InstalledModel,
  },
  'models:download': {
    input: z.object({
      url: z.string().url(),
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/)
        .optional(),
      name: z.string().optional(),
    }),
    output: ModelDownload,
  },
  'models:catalogue': { input: Empty, output: z.object({ items: z.array(CatalogueModel) }) },
  'models:install': { input: z.object({ id: z.string().min(1).max(200) }), output: ModelDownload },
  'models:cancelDownload': { input: z.object({ id: z.string() }), output: Ok },
  'models:remove': { input: z.object({ id: z.string() }), output: Ok },
  'engine:providers': {
    input: Empty,
    output: z.object({ providers: z.array(ProviderStatus), threads: z.number().int() }),
  },
  'account:state': { input: Empty, output: AccountState },
  'account:signUp': { input: z.object({ email, password }), output: z.object({ needsConfirmation: z.boolean() }) },
  'account:confirm': { input: z.object({ email, code: z.string().trim().min(1) }), output: Ok },
  'account:resendCode': { input: z.object({ email }), output: Ok },
  'account:signIn': { input: z.object({ email, password }), output: AccountState },
  'account:signOut': { input: Empty, output: Ok },
  'account:forgotPassword': { input: z.object({ email }), output: Ok },
  'account:resetPassword': { input: z.object({ email, code: z.string().trim().min(1), password }), output: Ok },
  'account:me': { input: Empty, output: Me },
  /** Deletes the cloud account (the cloud re-checks the password), then signs out. Local images stay. */
  'account:delete': { input: z.object({ email, password: z.string().min(1).max(256) }), output: Ok },
  /** Builds the cloud export, downloads the zip into the exports folder and shows it there. */
  'account:export': {
    input: Empty,
    output: z.object({ path: z.string(), images: z.number().int(), bytes: z.number().int() }),
  },
  /** The Account chart: cloud images per day (current + previous period, by source) and this computer's. */
  'usage:daily': { input: Empty, output: UsageChartData },
  /** Low-quota notices already closed (once per period and level). */
  'usage:dismissedNotices': { input: Empty, output: z.object({ items: z.array(DismissedNotice) }) },
  'usage:dismissNotice': { input: DismissedNotice, output: Ok },
  'billing:upgrade': { input: Empty, output: z.object({ url: z.string().url() }) },
  'billing:manage': { input: Empty, output: z.object({ url: z.string().url() }) },
  // Webhooks (issue 16): the cloud's /v1/webhooks for the signed-in user. create and rotateSecret
  // return the signing secret, which the cloud never shows again.
  'webhooks:list': { input: Empty, output: WebhookEndpointList },
  'webhooks:create': { input: CreateWebhookBody, output: WebhookEndpointWithSecret },
  'webhooks:update': {
    input: z.object({ id: WebhookEndpointIdSchema, patch: UpdateWebhookBody }),
    output: WebhookEndpoint,
  },
  'webhooks:delete': { input: z.object({ id: WebhookEndpointIdSchema }), output: Ok },
  'webhooks:rotateSecret': { input: z.object({ id: WebhookEndpointIdSchema }), output: WebhookEndpointWithSecret },
  'webhooks:test': { input: z.object({ id: WebhookEndpointIdSchema }), output: WebhookDelivery },
  'webhooks:deliveries': {
    input: z.object({ id: WebhookEndpointIdSchema, cursor: WebhookDeliveryIdSchema.optional() }),
    output: WebhookDeliveryPage,
  },
  'webhooks:replay': {
    input: z.object({ id: WebhookEndpointIdSchema, deliveryId: WebhookDeliveryIdSchema }),
    output: WebhookDelivery,
  },
  /** API keys of the signed-in account (issue 16): the whole key is in `apiKeys:create`'s answer only. */
  'apiKeys:list': { input: Empty, output: ApiKeyList },
  'apiKeys:create': { input: CreateApiKeyBody, output: CreatedApiKey },
  'apiKeys:revoke': { input: z.object({ id: ApiKeyIdSchema }), output: Ok },
  'settings:get': { input: Empty, output: Settings },
  'settings:update': { input: Settings.partial(), output: Settings },
  'sync:status': {
    input: Empty,
    output: z.object({
      enabled: z.boolean(),
      state: z.enum(['idle', 'syncing', 'paused', 'offline', 'error', 'signed_out']),
      lastSyncAt: z.string().nullable(),
      pending: z.number().int(),
      error: z.string().nullable(),
      /** The current pass: uploads and downloads done of those planned (issue 13). */
      progress: z.object({ done: z.number().int(), total: z.number().int() }).optional(),
      /** The error's stable code (QUOTA_STORAGE_EXCEEDED offers Upgrade). */
      errorCode: z.string().nullable().optional(),
      /** Paused by the person (sync stays switched on; nothing moves until resumed). */
      paused: z.boolean().optional(),
      /** The account's synced storage as of the last pass; null while unknown. */
      storage: StorageUsage.nullable().optional(),
      /** Unit: bytes of local images (and thumbnails) waiting for their first upload. */
      pendingBytes: z.number().int().optional(),
      /**
       * Images that will not fit in the plan's storage, found before any of their bytes moved:
       * the UI says so and offers Upgrade. Null when everything waiting fits (or storage is unknown).
       */
      overLimit: z.object({ images: z.number().int(), bytes: z.number().int() }).nullable().optional(),
      /**
       * Full images of cloud rows that arrived with their thumbnail only: downloaded in the
       * background since the app started (done) of those known (total); `waiting` still to fetch.
       */
      downloads: z.object({ done: z.number().int(), total: z.number().int(), waiting: z.number().int() }).optional(),
    }),
  },
  'sync:now': { input: Empty, output: Ok },
  /** Pauses or resumes syncing without switching it off (the shell's Pause / Resume). */
  'sync:pause': { input: z.object({ paused: z.boolean() }).strict(), output: Ok },
} as const satisfies Record<`${string}:${string}`, { input: z.ZodType; output: z.ZodType }>;

export type IpcChannel = keyof typeof ipcContract;
export type IpcInput<C extends IpcChannel> = z.input<(typeof ipcContract)[C]['input']>;
export type IpcParsedInput<C extends IpcChannel> = z.output<(typeof ipcContract)[C]['input']>;
export type IpcOutput<C extends IpcChannel> = z.output<(typeof ipcContract)[C]['output']>;

/** One handler per channel; a missing one is a compile error where the handlers are built. */
export type IpcHandlers = {
  [C in IpcChannel]: (input: IpcParsedInput<C>) => Promise<IpcOutput<C>>;
};

/** Events main → renderer. */
export const ipcEvents = {
  'jobs:changed': LocalJob,
  'jobs:progressed': z.object({
    jobId: LocalJobId,
    step: z.number().int(),
    total: z.number().int(),
    elapsedMs: z.number(),
    preview: z.string().optional(),
    /** Present while a large image is decoded in tiles: 1-based tile just decoded, of `tiles`. */
    decode: z.object({ tile: z.number().int(), tiles: z.number().int() }).optional(),
  }),
  'library:changed': z.object({ ids: z.array(LocalImageId) }),
  /** The full PNG of an image someone opened is arriving (`library:download`); about ten a second at most. */
  'library:downloadProgressed': z.object({
    id: LocalImageId,
    /** Unit: bytes received so far. */
    receivedBytes: z.number().int(),
    /** Unit: bytes; null when the server did not say. */
    totalBytes: z.number().int().nullable(),
  }),
  'account:changed': AccountState,
  'account:exportProgressed': z.object({
    phase: z.enum(['preparing', 'downloading', 'saved']),
    /** Unit: bytes of the zip received so far (0 while the cloud prepares it). */
    receivedBytes: z.number().int(),
    /** Unit: bytes; null until known. */
    totalBytes: z.number().int().nullable(),
  }),
  'models:progressed': ModelDownload,
  'sync:changed': z.object({ state: z.string(), pending: z.number().int() }),
  'billing:returned': z.object({ status: z.enum(['success', 'cancel']) }),
} as const satisfies Record<`${string}:${string}`, z.ZodType>;
export type IpcEventName = keyof typeof ipcEvents;
export type IpcEventPayload<E extends IpcEventName> = z.infer<(typeof ipcEvents)[E]>;

/** What every invoke returns: Electron only carries `message` across ipcMain.handle, so errors travel as JSON. */
export const IpcEnvelope = z.union([
  z.object({ ok: z.literal(true), value: z.unknown() }),
  z.object({
    ok: z.literal(false),
    error: z.object({
      code: z.string(),
      message: z.string(),
      userMessage: z.string(),
      retryable: z.boolean(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  }),
]);
export type IpcEnvelope = z.infer<typeof IpcEnvelope>;

/** The API the preload exposes as `window.atelier`, and the browser host's bridge implements. */
export interface AtelierBridge {
  invoke<C extends IpcChannel>(channel: C, input: IpcInput<C>): Promise<IpcEnvelope>;
  on<E extends IpcEventName>(event: E, listener: (payload: IpcEventPayload<E>) => void): () => void;
}
