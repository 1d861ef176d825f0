/**
 * A small ONNX graph builder on the `onnx-proto` codecs: enough to write Stable-Diffusion-shaped
 * fixture models from JavaScript, including weights stored as external data the way Hugging Face
 * Optimum writes large models (`model.onnx` + `model.onnx_data`).
 */
import onnxProto from 'onnx-proto';
import { Mt19937 } from '../schedulers/random.ts';

const { onnx } = onnxProto;

export const ElemType = { FLOAT: 1, INT32: 6, INT64: 7, FLOAT16: 10 } as const;
export type ElemType = (typeof ElemType)[keyof typeof ElemType];

export type Attr =
  | { kind: 'i'; value: number }
  | { kind: 'f'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 's'; value: string };
export const ai = (value: number): Attr => ({ kind: 'i', value });
export const af = (value: number): Attr => ({ kind: 'f', value });
export const aints = (value: number[]): Attr => ({ kind: 'ints', value });
export const as = (value: string): Attr => ({ kind: 's', value });

type Dim = number | string;

interface Initializer {
  name: string;
  dataType: ElemType;
  dims: number[];
  bytes: Uint8Array;
}

export interface BuiltModel {
  /** The serialised ModelProto. */
  model: Uint8Array;
  /** The external weight file's bytes, when `externalDataFile` was given. */
  externalData?: Uint8Array;
}

const bytesOf = (a: Float32Array | BigInt64Array | Int32Array): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();

export class GraphBuilder {
  readonly name: string;
  private readonly rng: Mt19937;
  private readonly nodes: ReturnType<typeof onnx.NodeProto.create>[] = [];
  private readonly inits: Initializer[] = [];
  private readonly inputs: ReturnType<typeof onnx.ValueInfoProto.create>[] = [];
  private readonly outputs: ReturnType<typeof onnx.ValueInfoProto.create>[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  /** `seed` makes the random weights deterministic. */
  constructor(name: string, seed: number) {
    this.name = name;
    this.rng = new Mt19937(seed);
  }

  /** A unique tensor name with the given prefix. */
  fresh(prefix: string): string {
    let n = prefix;
    while (this.used.has(n)) n = `${prefix}_${++this.counter}`;
    this.used.add(n);
    return n;
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A float initializer of normal samples scaled by `scale` (e.g. gain / sqrt(fan_in)). */
  randn(prefix: string, dims: number[], scale: number): string {
    const n = dims.reduce((a, b) => a * b, 1);
    return this.floats(prefix, dims, this.rng.gaussians(n, scale));
  }

  /** A float initializer with every element equal to `value`. */
  fill(prefix: string, dims: number[], value: number): string {
    return this.floats(prefix, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value));
  }

  floats(prefix: string, dims: number[], data: Float32Array): string {
    const name = this.fresh(prefix);
    this.inits.push({ name, dataType: ElemType.FLOAT, dims, bytes: bytesOf(data) });
    return name;
  }

  int64s(prefix: string, values: number[]): string {
    const name = this.fresh(prefix);
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.inits.push({ name, dataType: ElemType.INT64, dims: [values.length], bytes: bytesOf(data) });
    return name;
  }

  /** A float scalar constant. */
  scalar(prefix: string, value: number): string {
    const name = this.fresh(prefix);
    this.inits.push({ name, dataType: ElemType.FLOAT, dims: [], bytes: bytesOf(Float32Array.of(value)) });
    return name;
  }

  /** Adds a node and returns the name of its (first) output. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outName?: string): string {
    const out = outName ?? this.fresh(`${opType.toLowerCase()}_out`);
    if (outName) this.used.add(outName);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        name: this.fresh(`${opType}_node`),
        input: inputs,
        output: [out],
        attribute: Object.entries(attrs).map(([name, a]) => attribute(name, a)),
      }),
    );
    return out;
  }

  /**
   * Serialises the model. With `externalDataFile`, every initializer of at least 1024 bytes is
   * written to that file (relative to the model) instead of inside the protobuf, as Optimum does.
   */
  build(opset: number, externalDataFile?: string): BuiltModel {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    const initializer = this.inits.map((t) => {
      if (externalDataFile && t.bytes.byteLength >= 1024) {
        const entry = onnx.TensorProto.create({
          name: t.name,
          dataType: t.dataType,
          dims: t.dims,
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: 'location', value: externalDataFile },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(t.bytes.byteLength) },
          ],
        });
        chunks.push(t.bytes);
        offset += t.bytes.byteLength;
        return entry;
      }
      return onnx.TensorProto.create({ name: t.name, dataType: t.dataType, dims: t.dims, rawData: t.bytes });
    });
    const graph = onnx.GraphProto.create({
      name: this.name,
      node: this.nodes,
      initializer,
      input: this.inputs,
      output: this.outputs,
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'atelier-fixture-builder',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: opset }],
      graph,
    });
    const result: BuiltModel = { model: onnx.ModelProto.encode(model).finish() };
    if (externalDataFile) result.externalData = Buffer.concat(chunks);
    return result;
  }
}

function valueInfo(name: string, elemType: ElemType, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, a: Attr) {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'i':
      return onnx.AttributeProto.create({ name, type: T.INT, i: a.value });
    case 'f':
      return onnx.AttributeProto.create({ name, type: T.FLOAT, f: a.value });
    case 'ints':
      return onnx.AttributeProto.create({ name, type: T.INTS, ints: a.value });
    case 's':
      return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(a.value) });
  }
}
