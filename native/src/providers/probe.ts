import onnxProto from 'onnx-proto';
import { InferenceSession, Tensor } from 'onnxruntime-node';

const { onnx } = onnxProto;

let probeModel: Uint8Array | undefined;

/** A one-node Identity graph: the smallest model every execution provider can take. */
function identityModel(): Uint8Array {
  probeModel ??= onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'atelier-provider-probe',
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'probe',
        node: [{ opType: 'Identity', input: ['x'], output: ['y'] }],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }],
      },
    }),
  ).finish();
  return probeModel;
}

/**
 * Creates a session on `provider` and runs it once. Resolves to null when the provider works,
 * else to the runtime's reason. Only called once the cheap static checks pass, because a failed
 * provider load makes onnxruntime log to stderr.
 */
export async function probeProvider(provider: string): Promise<string | null> {
  try {
    const session = await InferenceSession.create(identityModel(), {
      executionProviders: [provider],
      graphOptimizationLevel: 'disabled',
    });
    try {
      const out = await session.run({ x: new Tensor('float32', new Float32Array([1]), [1]) });
      if (out.y?.data[0] !== 1) return `a test run on ${provider} returned a wrong value`;
    } finally {
      await session.release();
    }
    return null;
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
  }
}
