/**
 * The deployment's settings: CDK context values (cdk.json, `-c key=value`, or `cdk.context.json`)
 * validated once with zod, so a missing certificate or a malformed model catalogue fails at synth
 * with the key's name instead of half-way through a CloudFormation update.
 */
import { z } from 'zod';
import { DEFAULT_WORKER_SCALING } from './worker-scaling.ts';

const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

/** The retention periods CloudWatch Logs accepts. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export const SettingsSchema = z
  .object({
    /** Short environment name, part of every resource and stack name (`prod`, `staging`). */
    envName: z
      .string()
      .regex(/^[a-z][a-z0-9-]{1,15}$/)
      .default('prod'),
    account: z
      .string()
      .regex(/^\d{12}$/)
      .optional(),
    region: z.string().min(1).optional(),
    /** Public host name of the API (the ALB answers it; the certificate must cover it). */
    domainName: z
      .string()
      .regex(/^[a-z0-9.-]+\.[a-z]{2,}$/)
      .optional(),
    /** ACM certificate for `domainName`, in the stack's region. */
    certificateArn: z.string().startsWith('arn:aws:acm:').optional(),
    /** The image tag (a git tag or sha) of both the API and the worker images in the registry stack's repositories. */
    imageTag: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,128}$/)
      .optional(),
    /** `owner/name` of the GitHub repository whose tag workflows may deploy (OIDC trust). */
    githubRepo: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/)
      .optional(),
    /** ARN of the account's existing GitHub OIDC provider; unset = the registry stack creates it (one per account). */
    githubOidcProviderArn: z.string().startsWith('arn:aws:iam::').optional(),
    /** Alarm notifications go here (an SNS e-mail subscription the recipient confirms). */
    alarmEmail: z.string().email().optional(),

    natGateways: int(2, 1, 3),
    dbInstanceType: z.string().default('t4g.medium'),
    dbMultiAz: bool.default(true),
    /** Unit: days of automated backups (point-in-time recovery window). */
    dbBackupDays: int(14, 1, 35),
    /** Unit: GiB. */
    dbStorageGiB: int(50, 20, 16_384),
    apiMinTasks: int(2, 1, 100),
    apiMaxTasks: int(10, 1, 200),
    workerInstanceType: z
      .string()
      .regex(/^(g|p)[0-9][a-z0-9]*\.[a-z0-9]+$/, 'a GPU instance type (g*/p* family)')
      .default('g5.xlarge'),
    /** Worker tasks kept running with an empty queue: 0 scales the GPU fleet to zero; 1 keeps one warm. */
    workerMinTasks: int(DEFAULT_WORKER_SCALING.minTasks, 0, 100),
    workerMaxInstances: int(DEFAULT_WORKER_SCALING.maxTasks, 1, 100),
    /** Queued jobs one worker task should clear; the fleet is at least ceil(queued / this) (lib/worker-scaling.ts). */
    workerBacklogPerTask: int(DEFAULT_WORKER_SCALING.backlogPerTask, 1, 100),
    /** Generations one worker process runs at once (WORKER_CONCURRENCY). */
    workerConcurrency: int(1, 1, 8),
    /** The cloud model catalogue (ATELIER_CLOUD_MODELS), a JSON array; see cloud/src/catalogue. */
    cloudModels: z
      .string()
      .refine((s) => {
        try {
          return Array.isArray(JSON.parse(s));
        } catch {
          return false;
        }
      }, 'a JSON array')
      .optional(),
    /** Bucket and prefix the GPU hosts copy model folders from at boot (`s3://<bucket>/<prefix>` → /opt/atelier/models). */
    modelsBucket: z.string().min(3).optional(),
    modelsPrefix: z.string().default('models/'),
    /** Comma-separated origins allowed to call the API and to use presigned URLs from a browser context. */
    corsOrigins: z.string().default('app://atelier'),
    /** Complete ARN of a Secrets Manager secret with JSON keys STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET. Unset = billing off. */
    stripeSecretArn: z.string().startsWith('arn:aws:secretsmanager:').optional(),
    /** The Pro plan's Stripe Price id (not a secret). */
    stripePricePro: z.string().startsWith('price_').optional(),
    /** Unit: days CloudWatch keeps container logs (one of CloudWatch's allowed values). */
    logRetentionDays: z.coerce
      .number()
      .refine((d) => LOG_RETENTION_DAYS.includes(d), `one of ${LOG_RETENTION_DAYS.join(', ')}`)
      .default(30),
  })
  .superRefine((s, ctx) => {
    if ((s.stripeSecretArn === undefined) !== (s.stripePricePro === undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['stripeSecretArn'],
        message: 'set stripeSecretArn and stripePricePro together (billing needs both)',
      });
    if (s.workerMaxInstances < s.workerMinTasks)
      ctx.addIssue({ code: 'custom', path: ['workerMaxInstances'], message: 'must be at least workerMinTasks' });
    if (s.apiMaxTasks < s.apiMinTasks)
      ctx.addIssue({ code: 'custom', path: ['apiMaxTasks'], message: 'must be at least apiMinTasks' });
  });
export type Settings = z.output<typeof SettingsSchema>;
export type SettingsInput = z.input<typeof SettingsSchema>;

/** What the service stack needs on top of the registry's settings. */
export const SERVICE_KEYS = ['domainName', 'certificateArn', 'imageTag'] as const;
export type ServiceSettings = Settings & Required<Pick<Settings, (typeof SERVICE_KEYS)[number]>>;

/** The service keys still missing (the registry stack deploys without them; the service stack cannot). */
export function missingServiceSettings(s: Settings): string[] {
  return SERVICE_KEYS.filter((k) => s[k] === undefined);
}

export function isServiceSettings(s: Settings): s is ServiceSettings {
  return missingServiceSettings(s).length === 0;
}

export const SETTING_KEYS = Object.keys(SettingsSchema.shape) as (keyof Settings)[];

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

/** Validates raw context values; throws SettingsError naming each bad key. */
export function parseSettings(raw: Record<string, unknown>): Settings {
  const picked = Object.fromEntries(
    SETTING_KEYS.filter((k) => raw[k] !== undefined && raw[k] !== '').map((k) => [k, raw[k]]),
  );
  const parsed = SettingsSchema.safeParse(picked);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(context)'}: ${i.message}`);
    throw new SettingsError(`Invalid CDK context (pass with -c key=value or set in cdk.json):\n${lines.join('\n')}`);
  }
  return parsed.data;
}
