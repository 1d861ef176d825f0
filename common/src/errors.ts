/**
 * Every expected failure in Atelier has one stable code from this union. The table maps each
 * code to the HTTP status the cloud answers with and to a default message that tells a person
 * what to do next. Codes never change meaning once shipped: clients switch on them.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: {
    status: 400,
    retryable: false,
    message: 'Some fields are not valid. Fix the fields listed and try again.',
  },
  BAD_REQUEST: {
    status: 400,
    retryable: false,
    message: 'The request could not be understood. Update the app and try again.',
  },
  AUTH_REQUIRED: { status: 401, retryable: false, message: 'Sign in to continue.' },
  AUTH_INVALID_TOKEN: { status: 401, retryable: false, message: 'Your session is not valid. Sign in again.' },
  AUTH_TOKEN_EXPIRED: { status: 401, retryable: true, message: 'Your session has expired. Sign in again.' },
  AUTH_FAILED: { status: 401, retryable: false, message: 'The email or password is wrong.' },
  AUTH_NOT_CONFIRMED: {
    status: 403,
    retryable: false,
    message: 'Confirm your email address with the code we sent you.',
  },
  AUTH_USER_EXISTS: {
    status: 409,
    retryable: false,
    message: 'An account with this email already exists. Sign in instead.',
  },
  AUTH_WEAK_PASSWORD: {
    status: 400,
    retryable: false,
    message: 'Use at least 8 characters with an upper-case letter, a lower-case letter and a digit.',
  },
  AUTH_CODE_INVALID: {
    status: 400,
    retryable: false,
    message: 'That code is not right or has expired. Ask for a new one.',
  },
  FORBIDDEN: { status: 403, retryable: false, message: 'You are not allowed to do this.' },
  PLAN_REQUIRED: { status: 403, retryable: false, message: 'Your plan does not include this. Upgrade to use it.' },
  PLAN_ALREADY_ACTIVE: { status: 409, retryable: false, message: 'You are already on this plan.' },
  USAGE_RANGE_INVALID: {
    status: 400,
    retryable: false,
    message: 'The date range is not valid. Give from and to as YYYY-MM-DD, from not after to, at most 93 days apart.',
  },
  ADMIN_REQUIRED: {
    status: 403,
    retryable: false,
    message: 'Only operators can see this. Ask an operator to run `npm run admin -- grant-admin <you>`.',
  },
  NOT_FOUND: { status: 404, retryable: false, message: 'That item does not exist or was deleted.' },
  CONFLICT: { status: 409, retryable: false, message: 'This conflicts with the current state. Refresh and try again.' },
  IDEMPOTENCY_KEY_REUSED: {
    status: 409,
    retryable: false,
    message: 'This request key was already used for a different request.',
  },
  GENERATION_NOT_CANCELABLE: { status: 409, retryable: false, message: 'This generation has already finished.' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, message: 'The request is too large.' },
  QUOTA_EXCEEDED: {
    status: 429,
    retryable: false,
    message: 'You have used all your cloud images for this period. Upgrade or wait for the next period.',
  },
  QUOTA_STORAGE_EXCEEDED: {
    status: 413,
    retryable: false,
    message:
      'Your cloud storage is full. Delete images from the cloud gallery or upgrade for more space; images stay on this computer.',
  },
  UPLOAD_INCOMPLETE: {
    status: 409,
    retryable: true,
    message: 'The image has not finished uploading. Upload it again with the links you were given, then retry.',
  },
  UPLOAD_SIZE_MISMATCH: {
    status: 422,
    retryable: true,
    message: 'The uploaded file does not have the size that was declared. It was removed; upload it again.',
  },
  RATE_LIMITED: { status: 429, retryable: true, message: 'Too many requests. Wait a moment and try again.' },
  MODEL_NOT_AVAILABLE: {
    status: 422,
    retryable: false,
    message: 'That model is not available on your plan. Pick another model.',
  },
  BILLING_DISABLED: {
    status: 503,
    retryable: false,
    message: 'Billing is not configured on this server. Set the Stripe keys to enable it.',
  },
  BILLING_NO_CUSTOMER: { status: 404, retryable: false, message: 'You have no subscription to manage yet.' },
  BILLING_UNAVAILABLE: {
    status: 502,
    retryable: true,
    message: 'The payment provider could not be reached. Nothing was charged; try again.',
  },
  WEBHOOK_SIGNATURE_INVALID: { status: 400, retryable: false, message: 'The webhook signature is not valid.' },
  WEBHOOK_URL_INVALID: {
    status: 400,
    retryable: false,
    message:
      'The webhook URL is not accepted. Use a full https:// URL of a server on the internet, without a user name or password.',
  },
  WEBHOOK_TARGET_FORBIDDEN: {
    status: 422,
    retryable: false,
    message:
      'The webhook URL points at a private, loopback or link-local address, which Atelier does not call. Use a public https endpoint.',
  },
  WEBHOOK_ENDPOINT_LIMIT: {
    status: 409,
    retryable: false,
    message: 'You have reached the number of webhook endpoints allowed. Delete one you no longer use, then add it.',
  },
  WEBHOOK_ENDPOINT_DISABLED: {
    status: 409,
    retryable: false,
    message: 'This webhook endpoint is disabled. Enable it, then send again.',
  },
  STORAGE_UNAVAILABLE: {
    status: 503,
    retryable: true,
    message: 'Image storage could not be reached. Try again shortly.',
  },
  ENGINE_MODEL_NOT_FOUND: {
    status: 404,
    retryable: false,
    message: 'The model is not installed. Install it in Settings → Models.',
  },
  ENGINE_MODEL_INVALID: {
    status: 422,
    retryable: false,
    message: 'The model folder is incomplete or inconsistent. Re-import or re-download it.',
  },
  ENGINE_PROVIDER_UNAVAILABLE: {
    status: 503,
    retryable: false,
    message: 'The selected execution provider cannot run here. Choose another in Settings.',
  },
  ENGINE_OUT_OF_MEMORY: {
    status: 503,
    retryable: true,
    message: 'The GPU ran out of memory. Try a smaller size, or run in the cloud.',
  },
  ENGINE_MEMORY_INSUFFICIENT: {
    status: 422,
    retryable: false,
    message:
      'This job needs more memory than this computer has free. Use a smaller size or fewer images, close other apps, or run it in the cloud.',
  },
  ENGINE_FAILED: {
    status: 500,
    retryable: true,
    message: 'Generation failed. Try again; if it keeps failing, run `atelier doctor`.',
  },
  INPUT_IMAGE_NOT_FOUND: {
    status: 404,
    retryable: false,
    message: 'The starting image or mask was not found. Check the file name or pick the image again.',
  },
  INPUT_IMAGE_UNREADABLE: {
    status: 422,
    retryable: false,
    message:
      'The starting image or mask could not be read: it is damaged or cannot be opened. Save it again as PNG or JPEG.',
  },
  INPUT_IMAGE_UNSUPPORTED_TYPE: {
    status: 415,
    retryable: false,
    message: 'Starting images and masks must be PNG or JPEG files. Convert the image and try again.',
  },
  INPUT_IMAGE_SIZE_MISMATCH: {
    status: 422,
    retryable: false,
    message: 'The mask must be the same width and height as the starting image. Paint or save the mask at that size.',
  },
  CLOUD_INPUTS_UNAVAILABLE: {
    status: 422,
    retryable: false,
    message:
      'Starting images and masks run on this computer for now: cloud runs cannot take them yet. Run it on this computer.',
  },
  INPUT_TOO_LARGE: {
    status: 413,
    retryable: false,
    message:
      'The starting image or mask is too large to upload (at most 32 MB). Save it smaller or as JPEG and try again.',
  },
  INPUT_DIMENSIONS_INVALID: {
    status: 422,
    retryable: false,
    message: 'The starting image or mask must be 8 to 4096 pixels on each side. Resize it and try again.',
  },
  INPUT_DIMENSIONS_MISMATCH: {
    status: 422,
    retryable: false,
    message:
      'The uploaded starting image or mask does not have the width and height that were declared. It was removed; upload it again.',
  },
  INPUT_CHECKSUM_MISMATCH: {
    status: 422,
    retryable: false,
    message:
      'The uploaded starting image or mask does not match the SHA-256 that was declared. It was removed; upload it again.',
  },
  INPUT_COUNT_EXCEEDED: {
    status: 429,
    retryable: false,
    message:
      'You have too many starting images and masks stored in the cloud. They are removed a week after upload; reuse one or try again later.',
  },
  INPUT_PURPOSE_MISMATCH: {
    status: 422,
    retryable: false,
    message:
      'An uploaded mask was named as the starting image, or a starting image as the mask. Upload each for its own role.',
  },
  ENGINE_IMAGE_INPUT_UNSUPPORTED: {
    status: 422,
    retryable: false,
    message:
      'This model cannot start from an image: it has no VAE encoder (vae_encoder/model.onnx). Use a model exported with its encoder.',
  },
  CANCELED: { status: 409, retryable: false, message: 'The job was canceled.' },
  DOWNLOAD_FAILED: {
    status: 502,
    retryable: true,
    message: 'The download failed. Check your connection and try again; it resumes where it stopped.',
  },
  CHECKSUM_MISMATCH: {
    status: 422,
    retryable: false,
    message: 'The downloaded file does not match its checksum. It was removed; download it again.',
  },
  IMAGE_NOT_DOWNLOADED: {
    status: 409,
    retryable: true,
    message:
      'This image is in your cloud gallery but not downloaded to this computer yet, and the download failed. Check your connection and try again.',
  },
  OFFLINE: {
    status: 503,
    retryable: true,
    message: 'You are offline. Cloud jobs will be sent when you are back online.',
  },
  IPC_UNKNOWN_CHANNEL: {
    status: 400,
    retryable: false,
    message: 'The app asked for something it does not know. Update the app.',
  },
  IPC_FORBIDDEN_SENDER: { status: 403, retryable: false, message: 'This window is not allowed to call the app.' },
  SECRET_STORE_UNAVAILABLE: {
    status: 503,
    retryable: false,
    message:
      'No secure key store is available, so you cannot stay signed in. Install a keyring (gnome-keyring or KWallet).',
  },
  ACCOUNT_DELETED: {
    status: 410,
    retryable: false,
    message: 'This account has been deleted or is being deleted. Sign up again to use Atelier Cloud.',
  },
  REAUTH_FAILED: {
    status: 403,
    retryable: false,
    message: 'The email or password does not match this account. Type them again to confirm.',
  },
  EXPORT_TOO_LARGE: {
    status: 413,
    retryable: false,
    message: 'Your gallery is too large for one export file. Delete or download some images first, then export again.',
  },
  API_KEY_INVALID: {
    status: 401,
    retryable: false,
    message: 'This API key is not valid. Check that it was copied whole, or create a new key in Account → API keys.',
  },
  API_KEY_REVOKED: {
    status: 401,
    retryable: false,
    message: 'This API key was revoked. Create a new key in Account → API keys and use that instead.',
  },
  API_KEY_SCOPE_MISSING: {
    status: 403,
    retryable: false,
    message: 'This API key does not have the scope this request needs. Create a key with that scope.',
  },
  API_KEY_NOT_ALLOWED: {
    status: 403,
    retryable: false,
    message: 'API keys cannot do this (keys, billing and account deletion need you signed in to the app).',
  },
  API_KEYS_LIMIT_REACHED: {
    status: 409,
    retryable: false,
    message: 'You have as many API keys as an account can hold. Revoke one you no longer use, then create the new one.',
  },
  SERVICE_UNAVAILABLE: {
    status: 503,
    retryable: true,
    message: 'The service is starting or unavailable. Try again shortly.',
  },
  INTERNAL: { status: 500, retryable: true, message: 'Something went wrong on our side. Try again.' },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_CODE_LIST = Object.keys(ERROR_CODES) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The HTTP status the cloud answers with for a code. */
export function httpStatusFor(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

export interface AppErrorJson {
  code: ErrorCode;
  message: string;
  userMessage: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

export interface AppErrorOptions {
  userMessage?: string;
  retryable?: boolean;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * An expected failure. `message` is for logs and developers; `userMessage` is safe to show and
 * says what to do next. It crosses process boundaries as JSON (IPC envelopes, HTTP bodies).
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly userMessage: string;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, opts: AppErrorOptions = {}) {
    super(message ?? ERROR_CODES[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.userMessage = opts.userMessage ?? ERROR_CODES[code].message;
    this.retryable = opts.retryable ?? ERROR_CODES[code].retryable;
    this.details = opts.details;
  }

  get status(): number {
    return httpStatusFor(this.code);
  }

  toJSON(): AppErrorJson {
    const json: AppErrorJson = {
      code: this.code,
      message: this.message,
      userMessage: this.userMessage,
      retryable: this.retryable,
    };
    if (this.details !== undefined) json.details = this.details;
    return json;
  }

  /** Rebuilds an error from its JSON; anything unrecognisable becomes INTERNAL rather than throwing. */
  static fromJSON(json: unknown): AppError {
    if (typeof json !== 'object' || json === null) return new AppError('INTERNAL', 'Malformed error payload');
    const j = json as Partial<AppErrorJson>;
    const code = isErrorCode(j.code) ? j.code : 'INTERNAL';
    const opts: AppErrorOptions = {};
    if (typeof j.userMessage === 'string') opts.userMessage = j.userMessage;
    if (typeof j.retryable === 'boolean') opts.retryable = j.retryable;
    if (typeof j.details === 'object' && j.details !== null) opts.details = j.details;
    return new AppError(code, typeof j.message === 'string' ? j.message : undefined, opts);
  }

  static is(value: unknown, code?: ErrorCode): value is AppError {
    return value instanceof AppError && (code === undefined || value.code === code);
  }
}

/** The body every cloud error response carries. */
export interface ErrorResponseBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

export function toErrorResponse(err: AppError): ErrorResponseBody {
  const body: ErrorResponseBody = { error: { code: err.code, message: err.userMessage } };
  if (err.details !== undefined) body.error.details = err.details;
  return body;
}

/** Expected failures at boundaries are values, not exceptions. */
export type Result<T, E = AppError> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });
