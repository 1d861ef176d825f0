import { describe, expect, it } from 'vitest';
import { newId } from '../ids.ts';
import { CreateInputBody, inputLimitError, isInputRef, MAX_INPUT_BYTES, MAX_INPUT_SIDE } from './inputs.ts';

const ok = { contentType: 'image/png', byteLength: 1000, width: 64, height: 64 };

describe('input limits', () => {
  it.each([
    [{ ...ok, contentType: 'image/gif' }, 'INPUT_IMAGE_UNSUPPORTED_TYPE'],
    [{ ...ok, contentType: 'image/jpeg' }, null],
    [{ ...ok, byteLength: MAX_INPUT_BYTES }, null],
    [{ ...ok, byteLength: MAX_INPUT_BYTES + 1 }, 'INPUT_TOO_LARGE'],
    [{ ...ok, width: MAX_INPUT_SIDE + 1 }, 'INPUT_DIMENSIONS_INVALID'],
    [{ ...ok, height: 7 }, 'INPUT_DIMENSIONS_INVALID'],
    [{ ...ok, width: MAX_INPUT_SIDE, height: 8 }, null],
  ])('%o → %s', (body, code) => {
    expect(inputLimitError(body)?.code ?? null).toBe(code);
  });

  it('the body schema checks shapes, not limits, so limits get their own codes', () => {
    const body = {
      purpose: 'init',
      contentType: 'image/gif',
      byteLength: 5e8,
      sha256: 'a'.repeat(64),
      width: 9999,
      height: 1,
    };
    expect(CreateInputBody.safeParse(body).success).toBe(true);
    expect(CreateInputBody.safeParse({ ...body, purpose: 'other' }).success).toBe(false);
    expect(CreateInputBody.safeParse({ ...body, sha256: 'A'.repeat(64) }).success).toBe(false);
    expect(CreateInputBody.safeParse({ ...body, key: 'users/x/inputs/y.png' }).success).toBe(false);
  });

  it('tells input ids from gallery ids and file names', () => {
    expect(isInputRef(newId('inp'))).toBe(true);
    expect(isInputRef(newId('img'))).toBe(false);
    expect(isInputRef('in.png')).toBe(false);
  });
});
