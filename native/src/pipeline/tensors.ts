/** Converting between the pipeline's float32 arrays and whatever element type a model declares. */
import ort from 'onnxruntime-node';
import type { TensorType } from '../model/model-folder.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits of `v`, rounding to nearest even (what numpy's astype(float16) does). */
export function toHalfBits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && half & 1) ? 1 : 0));
  }
  const half = mant >>> 13;
  const rem = mant & 0x1fff;
  let out = (e << 10) | half;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) out += 1; // a carry into the exponent is still right
  return sign | out;
}

export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function halfTensor(bits: Uint16Array, dims: number[]): ort.Tensor {
  const tensor = new ort.Tensor('float16', bits, dims);
  // onnxruntime-common wraps the bits in a Float16Array where the runtime has one (Node ≥ 24),
  // and onnxruntime-node 1.30's binding then sees a byte length of 0 and refuses the input
  // ("not enough space: expected N, got 0"; microsoft/onnxruntime PR #32323). The binding
  // accepts raw Uint16Array bits, so hand it those.
  if (!(tensor.data instanceof Uint16Array)) (tensor as unknown as { cpuData: Uint16Array }).cpuData = bits;
  return tensor;
}

function toHalfArray(data: Float32Array, bits: Uint16Array): void {
  for (let i = 0; i < data.length; i++) bits[i] = toHalfBits(data[i]!);
}

/** A float tensor of the element type the model wants (float32 or float16). */
export function floatTensor(type: TensorType, data: Float32Array, dims: number[]): ort.Tensor {
  if (type === 'float16') {
    const bits = new Uint16Array(data.length);
    toHalfArray(data, bits);
    return halfTensor(bits, dims);
  }
  return new ort.Tensor('float32', data, dims);
}

/**
 * A model input allocated once and rewritten between runs: write `data`, call `sync()`, pass
 * `tensor` (the same object every run). For a float32 input the tensor is a view of `data`; for
 * float16, `sync` converts `data` into the tensor's own half-precision buffer.
 */
export interface FloatInput {
  readonly data: Float32Array;
  readonly tensor: ort.Tensor;
  sync(): void;
}

export function floatInput(type: TensorType, dims: number[]): FloatInput {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  if (type === 'float16') {
    const bits = new Uint16Array(data.length);
    return { data, tensor: halfTensor(bits, dims), sync: () => toHalfArray(data, bits) };
  }
  return { data, tensor: new ort.Tensor('float32', data, dims), sync: () => undefined };
}

/**
 * A model output as float32, whatever float type it came in: float32 data as it is, float16
 * converted into `into` when given (and long enough), else into a new array.
 */
export function toFloat32(t: ort.Tensor, into?: Float32Array): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const src = t.data as unknown as ArrayLike<number>;
    const out = into && into.length >= src.length ? into.subarray(0, src.length) : new Float32Array(src.length);
    // onnxruntime hands float16 back as raw bits (Uint16Array) or, on newer runtimes, Float16Array.
    const raw = src instanceof Uint16Array;
    for (let i = 0; i < src.length; i++) out[i] = raw ? fromHalfBits(src[i]!) : src[i]!;
    return out;
  }
  throw new Error(`expected a float tensor, got ${t.type}`);
}

/** An integer tensor (token ids, timesteps) of the type the model declares. */
export function intTensor(type: TensorType, values: ArrayLike<number>, dims: number[]): ort.Tensor {
  const n = values.length;
  switch (type) {
    case 'int64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(Math.round(values[i]!));
      return new ort.Tensor('int64', a, dims);
    }
    case 'int32':
      return new ort.Tensor(
        'int32',
        Int32Array.from(values, (v) => Math.round(v)),
        dims,
      );
    case 'float32':
    case 'float16':
      return floatTensor(type, Float32Array.from(values), dims);
    default:
      throw new Error(`unsupported tensor type ${type}`);
  }
}
