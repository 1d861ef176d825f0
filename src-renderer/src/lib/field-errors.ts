import { AppError, type FieldIssue } from '@atelier/common';
import type { z } from 'zod';

export type FieldErrors = Record<string, string>;

/** The first message per field from a VALIDATION_FAILED error's details, for inline display. */
export function fieldErrorsOf(error: unknown): FieldErrors | null {
  if (!AppError.is(error, 'VALIDATION_FAILED')) return null;
  const fields = (error.details as { fields?: unknown } | undefined)?.fields;
  if (!Array.isArray(fields)) return null;
  const out: FieldErrors = {};
  for (const f of fields as Partial<FieldIssue>[]) {
    if (typeof f?.message !== 'string') continue;
    const key = typeof f.field === 'string' && f.field !== '' ? f.field.split('.')[0]! : '_';
    out[key] ??= f.message;
  }
  return out;
}

export function fieldErrorsFromZod(error: z.ZodError): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.length ? String(issue.path[0]) : '_';
    out[key] ??= issue.message;
  }
  return out;
}

/** The sentence to show for any thrown value. */
export function userMessageOf(error: unknown): string {
  if (error instanceof AppError) return error.userMessage;
  return 'Something went wrong. Try again.';
}
