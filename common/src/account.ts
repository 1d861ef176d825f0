/**
 * Account deletion and export (issue 14): the bodies and answers of `DELETE /v1/me` and
 * `GET /v1/me/export`, shared by the API and the desktop's cloud client.
 */
import { z } from 'zod';

/**
 * Re-authentication for deleting the account: the account's email and its current password,
 * checked against Cognito by the server (see docs/decisions/0130-account-deletion-reauth-and-order.md).
 */
export const DeleteAccountBody = z
  .object({
    email: z.string().trim().min(3).max(254),
    password: z.string().min(1).max(256),
  })
  .strict();
export type DeleteAccountBody = z.infer<typeof DeleteAccountBody>;

export const AccountDeletion = z.object({
  status: z.literal('deleting'),
  requestedAt: z.string().datetime({ offset: true }),
});
export type AccountDeletion = z.infer<typeof AccountDeletion>;

export const AccountExport = z.object({
  /** A presigned GET URL for the zip; it stops working at `expiresAt`. */
  url: z.string().url(),
  expiresAt: z.string().datetime({ offset: true }),
  /** Unit: images in the zip. */
  images: z.number().int().min(0),
  /** Unit: bytes of the zip. */
  bytes: z.number().int().min(0),
});
export type AccountExport = z.infer<typeof AccountExport>;
