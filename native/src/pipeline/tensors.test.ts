import { describe, expect, it } from 'vitest';
import { floatTensor, fromHalfBits, intTensor, toFloat32, toHalfBits } from './tensors.ts';

describe('float16 conversion', () => {
  it('encodes known values exactly', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(1e6)).toBe(0x7c00);
    expect(toHalfBits(0.1)).toBe(0x2e66);
    expect(toHalfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie rounds to even
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true);
  });

  it('round-trips through tensors within half precision', () => {
    const data = Float32Array.of(0.5, -1.25, 3.14159, 1e-3);
    const back = toFloat32(floatTensor('float16', data, [4]));
    // Half precision keeps 11 significant bits: relative error at most 2⁻¹¹.
    back.forEach((v, i) => expect(Math.abs(v - data[i]!)).toBeLessThanOrEqual(Math.abs(data[i]!) * 2 ** -11));
    expect(toFloat32(floatTensor('float32', data, [4]))).toBe(data);
  });

  it('makes integer tensors of the declared type', () => {
    expect(intTensor('int64', [901], [1]).data).toEqual(BigInt64Array.of(901n));
    expect(intTensor('int32', [1, 2], [2]).type).toBe('int32');
    expect(intTensor('float32', [832.5], [1]).data).toEqual(Float32Array.of(832.5));
  });
});
