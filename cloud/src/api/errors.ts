import { AppError, httpStatusFor, isErrorCode, toErrorResponse, type ErrorCode } from '@atelier/common';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable } from '../db/pool.ts';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';

/** Fastify's own error codes that are the client's fault, mapped to ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_TYPE: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_TYPE: 'BAD_REQUEST',
  FST_ERR_INVALID_URL: 'BAD_REQUEST',
  FST_ERR_BAD_URL: 'BAD_REQUEST',
};

/** Any thrown value → `{ error: { code, message, details? } }` with the status from common's table. */
export function toAppError(err: unknown, req: FastifyRequest): AppError {
  if (AppError.is(err)) return err;
  const fe = err as FastifyError & { validationContext?: string };
  if (hasZodFastifySchemaValidationErrors(fe)) {
    const where = fe.validationContext ?? 'body';
    const fields = fe.validation.map((v) => ({
      field: v.instancePath.replace(/^\//, '').replaceAll('/', '.'),
      message: v.message ?? 'is not valid',
      in: where,
    }));
    const summary = fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join('; ');
    return new AppError('VALIDATION_FAILED', `Invalid ${where}: ${summary}`, {
      userMessage: `Please fix: ${summary}`,
      details: { fields },
    });
  }
  if (fe && typeof fe === 'object' && 'code' in fe && typeof fe.code === 'string' && FASTIFY_CODES[fe.code])
    return new AppError(FASTIFY_CODES[fe.code]!, fe.message);
  if (fe?.statusCode === 429) return new AppError('RATE_LIMITED', fe.message);
  if (fe && typeof fe === 'object' && 'validation' in fe)
    return new AppError('VALIDATION_FAILED', fe.message, { userMessage: `Please fix: ${fe.message}` });
  if (fe?.statusCode && fe.statusCode >= 400 && fe.statusCode < 500 && fe.statusCode !== 429)
    return new AppError(fe.statusCode === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', fe.message);
  // Migration 0130's triggers: new work for an account that is being (or was) deleted.
  if ((err as { code?: unknown })?.code === 'AT410')
    return new AppError('ACCOUNT_DELETED', 'This account has been deleted or is being deleted');
  if (isDatabaseUnavailable(err)) {
    req.log.warn({ err }, 'database unavailable');
    return new AppError('SERVICE_UNAVAILABLE', 'The database is busy or unreachable; retry shortly', {
      retryable: true,
      details: { retryAfterSeconds: 2 },
      cause: err,
    });
  }
  if (isResponseSerializationError(fe as never)) req.log.error({ err }, 'response did not match its schema');
  else req.log.error({ err }, 'unexpected error');
  return new AppError('INTERNAL', 'Unexpected error', { cause: err });
}

export function sendError(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.code.startsWith('AUTH_') && httpStatusFor(err.code) === 401) {
    const desc =
      err.code === 'AUTH_TOKEN_EXPIRED'
        ? ', error="invalid_token", error_description="expired"'
        : err.code === 'AUTH_INVALID_TOKEN'
          ? ', error="invalid_token"'
          : '';
    reply.header('www-authenticate', `Bearer realm="atelier"${desc}`);
  }
  return reply.code(httpStatusFor(isErrorCode(err.code) ? err.code : 'INTERNAL')).send(toErrorResponse(err));
}
