/** Neural-network building blocks expressed as ONNX nodes (opset 17), with random weights. */
import { af, ai, aints, as, type GraphBuilder } from './graph.ts';

export class Layers {
  readonly g: GraphBuilder;
  constructor(g: GraphBuilder) {
    this.g = g;
  }

  /** y = x·W + b with W [in, out]; x has the features on its last axis. */
  linear(x: string, inF: number, outF: number, gain = 1, bias = true): string {
    const w = this.g.randn('linear_w', [inF, outF], gain / Math.sqrt(inF));
    const y = this.g.op('MatMul', [x, w]);
    if (!bias) return y;
    return this.g.op('Add', [y, this.g.randn('linear_b', [outF], 0.02)]);
  }

  layerNorm(x: string, features: number): string {
    return this.g.op(
      'LayerNormalization',
      [x, this.g.fill('ln_scale', [features], 1), this.g.fill('ln_bias', [features], 0)],
      { axis: ai(-1), epsilon: af(1e-5) },
    );
  }

  conv(x: string, cin: number, cout: number, k: number, stride = 1, gain = 1): string {
    const w = this.g.randn('conv_w', [cout, cin, k, k], gain / Math.sqrt(cin * k * k));
    const b = this.g.randn('conv_b', [cout], 0.02);
    const pad = (k - 1) / 2;
    return this.g.op('Conv', [x, w, b], {
      kernel_shape: aints([k, k]),
      pads: aints([pad, pad, pad, pad]),
      strides: aints([stride, stride]),
    });
  }

  /**
   * GroupNorm over NCHW, as PyTorch exports it to opsets without GroupNormalization: reshape to
   * [N, groups, -1], instance-normalise, reshape back, then the per-channel affine.
   */
  groupNorm(x: string, channels: number, groups: number): string {
    const g = this.g;
    const grouped = g.op('Reshape', [x, g.int64s('gn_shape', [0, groups, -1])]);
    const normed = g.op(
      'InstanceNormalization',
      [grouped, g.fill('gn_one', [groups], 1), g.fill('gn_zero', [groups], 0)],
      {
        epsilon: af(1e-5),
      },
    );
    const back = g.op('Reshape', [normed, g.op('Shape', [x])]);
    const scaled = g.op('Mul', [back, g.fill('gn_gamma', [channels, 1, 1], 1)]);
    return g.op('Add', [scaled, g.fill('gn_beta', [channels, 1, 1], 0)]);
  }

  silu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [x])]);
  }

  /** CLIP's activation: x·σ(1.702x). */
  quickGelu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [this.g.op('Mul', [x, this.g.scalar('qg', 1.702)])])]);
  }

  /** Nearest-neighbour ×2 upsampling followed by a 3×3 conv. */
  upsample2x(x: string, channels: number): string {
    const g = this.g;
    const up = g.op('Resize', [x, '', g.floats('up_scales', [4], Float32Array.of(1, 1, 2, 2))], {
      mode: as('nearest'),
    });
    return this.conv(up, channels, channels, 3);
  }

  /** Nearest-neighbour upsampling to the spatial size of `like`, then a 3×3 conv (UNet skip sizes). */
  upsampleLike(x: string, like: string, channels: number): string {
    const g = this.g;
    const sizes = g.op('Concat', [g.op('Shape', [x], { end: ai(2) }), g.op('Shape', [like], { start: ai(2) })], {
      axis: ai(0),
    });
    const up = g.op('Resize', [x, '', '', sizes], { mode: as('nearest') });
    return this.conv(up, channels, channels, 3);
  }

  /** A ResNet block: GN → SiLU → conv (+ time embedding) → GN → SiLU → conv, plus the shortcut. */
  resnet(x: string, cin: number, cout: number, groups: number, tembAct?: { name: string; dim: number }): string {
    const g = this.g;
    let h = this.conv(this.silu(this.groupNorm(x, cin, groups)), cin, cout, 3);
    if (tembAct) {
      const t = this.linear(tembAct.name, tembAct.dim, cout);
      h = g.op('Add', [h, g.op('Unsqueeze', [t, g.int64s('unsq_axes', [2, 3])])]);
    }
    h = this.conv(this.silu(this.groupNorm(h, cout, groups)), cout, cout, 3, 1, 0.5);
    const shortcut = cin === cout ? x : this.conv(x, cin, cout, 1);
    return g.op('Add', [shortcut, h]);
  }

  /**
   * Attention over NCHW features: queries from the pixels, keys and values from `context`
   * ([N, tokens, contextDim]) — cross-attention — or from the pixels themselves when omitted.
   */
  spatialAttention(x: string, channels: number, groups: number, context?: { name: string; dim: number }): string {
    const g = this.g;
    const h = g.op(
      'Transpose',
      [g.op('Reshape', [this.groupNorm(x, channels, groups), g.int64s('attn_flat', [0, 0, -1])])],
      {
        perm: aints([0, 2, 1]),
      },
    );
    const ctx = context ?? { name: h, dim: channels };
    const q = this.linear(h, channels, channels, 1, false);
    const k = this.linear(ctx.name, ctx.dim, channels, 1, false);
    const v = this.linear(ctx.name, ctx.dim, channels, 1, false);
    const scores = g.op('Mul', [
      g.op('MatMul', [q, g.op('Transpose', [k], { perm: aints([0, 2, 1]) })]),
      g.scalar('attn_scale', 1 / Math.sqrt(channels)),
    ]);
    const attended = g.op('MatMul', [g.op('Softmax', [scores], { axis: ai(-1) }), v]);
    const out = g.op('Transpose', [this.linear(attended, channels, channels)], { perm: aints([0, 2, 1]) });
    return g.op('Add', [x, g.op('Reshape', [out, g.op('Shape', [x])])]);
  }
}
