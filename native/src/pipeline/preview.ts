/**
 * A cheap low-resolution preview of latents: one RGB pixel per latent pixel through a fixed
 * linear map (the well-known SD 1.x latent→RGB approximation), no VAE involved.
 */
import { encodePng } from '../png/png.ts';

const FACTORS = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
] as const;

/** `latents` is [channels, h, w] for one image; channels beyond 4 are ignored. */
export function latentPreview(latents: Float32Array, channels: number, h: number, w: number, scale = 1) {
  const n = h * w;
  const rgb = new Uint8Array(n * 3);
  const used = Math.min(channels, FACTORS.length);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let k = 0; k < used; k++) v += latents[k * n + p]! * scale * FACTORS[k]![c]!;
      rgb[p * 3 + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
    }
  }
  return { width: w, height: h, png: encodePng({ width: w, height: h, channels: 3, data: rgb }) };
}
