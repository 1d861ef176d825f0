import type { z } from 'zod';
import { AppError } from './errors.ts';

export interface FieldIssue {
  /** Dotted path of the bad field, e.g. `width` or `items.0.seed`; empty for the whole value. */
  field: string;
  message: string;
}

export function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ field: issue.path.map(String).join('.'), message: issue.message }));
}

/** A VALIDATION_FAILED error listing every bad field, with a message a person can act on. */
export function validationError(error: z.ZodError): AppError {
  const fields = issuesOf(error);
  const summary = fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join('; ');
  return new AppError('VALIDATION_FAILED', `Invalid input: ${summary}`, {
    userMessage: `Please fix: ${summary}`,
    details: { fields },
  });
}

/** Parses untrusted input; the only way a boundary turns unknown data into a typed value. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw validationError(result.error);
  return result.data;
}
