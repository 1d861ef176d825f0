import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CODES, ERROR_CODE_LIST, httpStatusFor, isErrorCode, toErrorResponse } from './errors.ts';

describe('AppError', () => {
  it('carries code, user message, retryable and status from the table', () => {
    const e = new AppError('QUOTA_EXCEEDED', 'user u1 at 100/100', { details: { used: 100, limit: 100 } });
    expect(e.code).toBe('QUOTA_EXCEEDED');
    expect(e.message).toBe('user u1 at 100/100');
    expect(e.userMessage).toMatch(/Upgrade/);
    expect(e.retryable).toBe(false);
    expect(e.status).toBe(429);
    expect(e).toBeInstanceOf(Error);
  });

  it('round-trips through JSON', () => {
    const e = new AppError('ENGINE_OUT_OF_MEMORY', 'OOM at 1024x1024', {
      userMessage: 'Too big',
      retryable: true,
      details: { width: 1024 },
    });
    const back = AppError.fromJSON(JSON.parse(JSON.stringify(e)));
    expect(back.toJSON()).toEqual(e.toJSON());
    expect(back.status).toBe(503);
  });

  it('turns an unknown or malformed payload into INTERNAL instead of throwing', () => {
    expect(AppError.fromJSON({ code: 'NOPE', message: 'x' }).code).toBe('INTERNAL');
    expect(AppError.fromJSON('garbage').code).toBe('INTERNAL');
    expect(AppError.fromJSON(null).code).toBe('INTERNAL');
  });

  it('builds the cloud error body with the user-facing message', () => {
    const e = new AppError('NOT_FOUND', 'gen_x of user y');
    expect(toErrorResponse(e)).toEqual({ error: { code: 'NOT_FOUND', message: ERROR_CODES.NOT_FOUND.message } });
  });

  it.each(ERROR_CODE_LIST)('%s has a status and a message that says what to do', (code) => {
    const status = httpStatusFor(code);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(600);
    expect(ERROR_CODES[code].message.length).toBeGreaterThan(10);
    expect(code).toMatch(/^[A-Z][A-Z_]+$/);
  });

  it('maps the auth and quota codes to the statuses clients rely on', () => {
    expect(httpStatusFor('AUTH_REQUIRED')).toBe(401);
    expect(httpStatusFor('AUTH_INVALID_TOKEN')).toBe(401);
    expect(httpStatusFor('AUTH_TOKEN_EXPIRED')).toBe(401);
    expect(httpStatusFor('PLAN_REQUIRED')).toBe(403);
    expect(httpStatusFor('VALIDATION_FAILED')).toBe(400);
    expect(httpStatusFor('RATE_LIMITED')).toBe(429);
    expect(httpStatusFor('BILLING_DISABLED')).toBe(503);
    expect(isErrorCode('NOT_FOUND')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
  });
});
