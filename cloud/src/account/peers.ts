/**
 * The outside services account deletion and export talk to, behind small ports: Stripe (cancel
 * the subscription, delete the customer), Cognito (check a password, delete the user) and S3
 * (list and delete everything under a user's prefix, upload an export file).
 */
import {
  AdminDeleteUserCommand,
  CognitoIdentityProviderClient,
  InitiateAuthCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AppError } from '@atelier/common';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import Stripe from 'stripe';
import type { BillingConfig } from '../billing/billing-config.ts';
import type { Config } from '../config.ts';
import { MAX_PRESIGN_SECONDS, userPrefix } from '../storage/keys.ts';
import type { S3StoreConfig } from '../storage/s3-object-store.ts';

export interface BillingEraser {
  /** Cancels the subscription now (no proration, no invoice) and deletes the customer. Idempotent. */
  erase(ids: { customerId: string | null; subscriptionId: string | null }): Promise<void>;
}

export interface IdentityProvider {
  /**
   * Signs in with a password and returns the access token Cognito issued, or null when the
   * email/password pair is wrong (or the sign-in needs a challenge this check cannot answer).
   */
  passwordSignIn(email: string, password: string): Promise<string | null>;
  /** Deletes the user (by sub). Deleting a user that is already gone succeeds. */
  deleteUser(sub: string): Promise<void>;
}

export interface UserObjects {
  /** Deletes every object under `users/{userId}/`, page by page. Returns how many were deleted. */
  deleteAll(userId: string): Promise<number>;
  /** The bytes of one object under the user's prefix, as a stream (null when missing). */
  read(key: string): Promise<Readable | null>;
  /** Uploads a file to a key under the user's prefix. */
  upload(key: string, file: string, bytes: number, contentType: string): Promise<void>;
  presignGet(key: string, seconds: number): Promise<string>;
  /** Deletes one object under a user's prefix (missing is fine). */
  deleteKey(key: string): Promise<void>;
}

const isMissing = (e: unknown) =>
  e instanceof Stripe.errors.StripeError && (e.code === 'resource_missing' || e.statusCode === 404);

/** Stripe through the official SDK (real Stripe, or the local peer that tests use). */
export function stripeEraser(billing: BillingConfig, opts: { maxNetworkRetries?: number } = {}): BillingEraser {
  const stripe = billing.enabled
    ? new Stripe(billing.secretKey, {
        ...(billing.api.host ? { host: billing.api.host } : {}),
        ...(billing.api.port ? { port: billing.api.port } : {}),
        ...(billing.api.protocol ? { protocol: billing.api.protocol } : {}),
        maxNetworkRetries: opts.maxNetworkRetries ?? 2,
        timeout: 20_000,
        telemetry: false,
        appInfo: { name: 'Atelier Cloud' },
      })
    : null;
  return {
    async erase({ customerId, subscriptionId }) {
      if (!customerId && !subscriptionId) return;
      // A user with a Stripe customer but billing switched off cannot be erased yet: retry later
      // rather than leave a paying subscription behind.
      if (!stripe) throw new Error('billing is disabled but the user has a Stripe customer');
      if (subscriptionId) {
        try {
          const sub = await stripe.subscriptions.retrieve(subscriptionId);
          if (sub.status !== 'canceled' && sub.status !== 'incomplete_expired')
            await stripe.subscriptions.cancel(subscriptionId, { invoice_now: false, prorate: false });
        } catch (e) {
          if (!isMissing(e)) throw e;
        }
      }
      if (customerId) {
        try {
          await stripe.customers.del(customerId);
        } catch (e) {
          if (!isMissing(e)) throw e;
        }
      }
    },
  };
}

/**
 * Cognito through the AWS SDK: InitiateAuth (USER_PASSWORD_AUTH, needs no credentials) and
 * AdminDeleteUser (the API task role's IAM permission; cognito-local accepts any credentials).
 */
export function cognitoIdentity(cognito: Config['cognito']): IdentityProvider {
  const local = cognito.region === 'local';
  const client = new CognitoIdentityProviderClient({
    region: local ? 'us-east-1' : cognito.region,
    ...(local ? { endpoint: cognito.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
    maxAttempts: 2,
  });
  return {
    async passwordSignIn(email, password) {
      try {
        const r = await client.send(
          new InitiateAuthCommand({
            ClientId: cognito.clientId,
            AuthFlow: 'USER_PASSWORD_AUTH',
            AuthParameters: { USERNAME: email, PASSWORD: password },
          }),
        );
        return r.AuthenticationResult?.AccessToken ?? null;
      } catch (e) {
        const name = (e as { name?: string }).name;
        if (
          name === 'NotAuthorizedException' ||
          name === 'InvalidPasswordException' || // cognito-local's answer to a wrong password
          name === 'UserNotFoundException' ||
          name === 'UserNotConfirmedException' ||
          name === 'PasswordResetRequiredException' ||
          name === 'InvalidParameterException'
        )
          return null;
        throw new AppError('SERVICE_UNAVAILABLE', 'The sign-in service did not answer; try again shortly', {
          retryable: true,
          cause: e,
        });
      }
    },
    async deleteUser(sub) {
      try {
        await client.send(new AdminDeleteUserCommand({ UserPoolId: cognito.userPoolId, Username: sub }));
      } catch (e) {
        if ((e as { name?: string }).name !== 'UserNotFoundException') throw e;
      }
    },
  };
}

/** The user's objects in S3. Keys are checked against the user's prefix before every call. */
export function s3UserObjects(
  config: S3StoreConfig,
  opts: { pageSize?: number } = {},
): UserObjects & { close(): void } {
  const client = new S3Client({
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    maxAttempts: config.maxAttempts ?? 3,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const Bucket = config.bucket;
  const underUsers = (key: string) => {
    if (!/^users\/[A-Za-z0-9][A-Za-z0-9_-]{0,127}\/[A-Za-z0-9_./-]+$/.test(key) || key.includes('..'))
      throw new TypeError(`not a user object key: ${key}`);
  };
  return {
    async deleteAll(userId) {
      const Prefix = userPrefix(userId);
      let deleted = 0;
      // Listing restarts from the beginning after each deleted page: the deleted keys are gone,
      // and an object written meanwhile is still found. Ends when a listing comes back empty.
      // ListObjects (v1) rather than v2: a truncated v2 listing needs a continuation token, which
      // s3rver (the local stack and tests) mints with DES, gone from OpenSSL 3 — it answers 500.
      // Restarting from the top never needs the token or the marker, so v1 costs nothing here.
      for (;;) {
        const page = await client.send(new ListObjectsCommand({ Bucket, Prefix, MaxKeys: opts.pageSize ?? 1000 }));
        const keys = (page.Contents ?? []).map((o) => o.Key!).filter((k) => k.startsWith(Prefix));
        if (keys.length === 0) return deleted;
        const r = await client.send(
          new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
        );
        if (r.Errors?.length) throw new Error(`S3 refused to delete ${r.Errors.length} object(s) under ${Prefix}`);
        deleted += keys.length;
      }
    },
    async read(key) {
      underUsers(key);
      try {
        const r = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        return r.Body as Readable;
      } catch (e) {
        if ((e as { name?: string }).name === 'NoSuchKey') return null;
        throw e;
      }
    },
    async upload(key, file, bytes, contentType) {
      underUsers(key);
      await client.send(
        new PutObjectCommand({
          Bucket,
          Key: key,
          Body: createReadStream(file),
          ContentLength: bytes,
          ContentType: contentType,
        }),
      );
    },
    async presignGet(key, seconds) {
      underUsers(key);
      return getSignedUrl(client, new GetObjectCommand({ Bucket, Key: key }), {
        expiresIn: Math.min(seconds, MAX_PRESIGN_SECONDS),
      });
    },
    async deleteKey(key) {
      underUsers(key);
      await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: key }], Quiet: true } }));
    },
    close: () => client.destroy(),
  };
}
