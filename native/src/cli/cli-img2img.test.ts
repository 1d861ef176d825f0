/**
 * `atelier generate --init … [--strength …] [--mask …]`: image to image and inpainting from the
 * command line, byte for byte what the engine host (the desktop's and the worker's path) makes,
 * and one clear line with a stable code for every picture it cannot use.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngineHost } from '../host/host.ts';
import { decodePng, encodePng, type RawImage } from '../png/png.ts';
import { featherRadius } from '../pipeline/input-image.ts';
import { readPngMetadata } from '../pipeline/metadata.ts';
import { cliSandbox, runCli, type CliRun } from './cli-test-support.ts';
import { createModelStore } from '../store/store.ts';

let root: string;
let env: NodeJS.ProcessEnv;
let start: string;

const atelier = (args: string[]): Promise<CliRun> => runCli(args, env);

beforeAll(async () => {
  ({ root, env } = cliSandbox('atelier-cli-img2img-', process.env, { ATELIER_THREADS: '1' }));
  start = path.join(root, 'start.png');
  const r = await atelier([
    'generate',
    'a harbour',
    '--steps',
    '3',
    '--width',
    '64',
    '--height',
    '64',
    '--seed',
    '1',
    '--out',
    start,
  ]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function maskFile(name: string, w: number, h: number, rect: [number, number, number, number]): string {
  const data = new Uint8Array(w * h * 3);
  for (let y = rect[1]; y < rect[3]; y++)
    for (let x = rect[0]; x < rect[2]; x++) data.fill(255, (y * w + x) * 3, (y * w + x) * 3 + 3);
  const file = path.join(root, name);
  writeFileSync(file, encodePng({ width: w, height: h, channels: 3, data }));
  return file;
}

describe('atelier generate --init', () => {
  it('image to image: the start picture’s size, its name and the strength in the metadata, and the same bytes as the engine host', async () => {
    const out = path.join(root, 'img2img.png');
    const r = await atelier([
      'generate',
      'a castle',
      '--init',
      start,
      '--strength',
      '0.6',
      '--steps',
      '5',
      '--seed',
      '3',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`seed 3  ${out}\n`);
    const png = readFileSync(out);
    expect(readPngMetadata(png)).toMatchObject({
      generation_mode: 'img2img',
      strength: 0.6,
      init_image: 'start.png',
      width: 64,
      height: 64,
      steps: 5,
    });
    expect(r.stderr).toMatch(/step 3\/3/); // ⌊5 × 0.6⌋ UNet steps

    const host = createEngineHost({
      store: createModelStore({ modelsDir: path.join(root, 'models'), fixtureDirs: [path.join(root, 'fixtures')] }),
      provider: 'cpu',
      threads: 1,
      cacheDir: path.join(root, 'cache'),
    });
    try {
      const h = await host.generate(
        'atelier-fixture-sd',
        { prompt: 'a castle', initImage: 'start.png', strength: 0.6, steps: 5, seed: 3 },
        { inputs: { initImage: readFileSync(start) } },
      );
      expect(readPngMetadata(h.images[0]!.png)).toEqual(readPngMetadata(png));
      expect(Buffer.from(h.images[0]!.png).equals(png)).toBe(true);
    } finally {
      await host.close();
    }
  });

  it('inpainting with --mask keeps every pixel outside the feather; a JPEG start picture works too', async () => {
    const rect: [number, number, number, number] = [24, 8, 56, 40];
    const out = path.join(root, 'inpaint.png');
    const r = await atelier([
      'generate',
      'a red door',
      '--init',
      start,
      '--mask',
      maskFile('mask.png', 64, 64, rect),
      '--strength',
      '1',
      '--steps',
      '4',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const a = decodePng(readFileSync(out));
    const b = decodePng(readFileSync(start));
    const f = featherRadius(64, 64);
    let same = 0;
    let outside = 0;
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++) {
        if (x >= rect[0] - f && x < rect[2] + f && y >= rect[1] - f && y < rect[3] + f) continue;
        outside++;
        const p = (y * 64 + x) * 3;
        if (a.data[p] === b.data[p] && a.data[p + 1] === b.data[p + 1] && a.data[p + 2] === b.data[p + 2]) same++;
      }
    expect(same).toBe(outside);
    expect(readPngMetadata(readFileSync(out))).toMatchObject({ generation_mode: 'inpaint', init_mask: 'mask.png' });

    const rgba = new Uint8Array(64 * 64 * 4);
    for (let p = 0; p < 64 * 64; p++) rgba.set([...b.data.subarray(p * 3, p * 3 + 3), 255], p * 4);
    const jpg = path.join(root, 'start.jpg');
    writeFileSync(jpg, jpeg.encode({ width: 64, height: 64, data: rgba }, 90).data);
    const fromJpeg = await atelier([
      'generate',
      'a castle',
      '--init',
      jpg,
      '--steps',
      '2',
      '--out',
      path.join(root, 'j.png'),
    ]);
    expect(fromJpeg.code, fromJpeg.stderr).toBe(0);
    expect(readPngMetadata(readFileSync(path.join(root, 'j.png')))).toMatchObject({
      init_image: 'start.jpg',
      strength: 0.75,
    });
  });

  it('makes the start picture’s own size (to a multiple of 8) unless --width/--height say otherwise', async () => {
    const img: RawImage = { width: 100, height: 75, channels: 3, data: new Uint8Array(100 * 75 * 3).fill(90) };
    const odd = path.join(root, 'odd.png');
    writeFileSync(odd, encodePng(img));
    const out = path.join(root, 'odd-out.png');
    expect((await atelier(['generate', 'x', '--init', odd, '--steps', '2', '--out', out])).code).toBe(0);
    expect(readPngMetadata(readFileSync(out))).toMatchObject({ width: 96, height: 72 });
    const sized = path.join(root, 'sized.png');
    expect(
      (
        await atelier([
          'generate',
          'x',
          '--init',
          odd,
          '--steps',
          '2',
          '--width',
          '64',
          '--height',
          '64',
          '--out',
          sized,
        ])
      ).code,
    ).toBe(0);
    expect(decodePng(readFileSync(sized))).toMatchObject({ width: 64, height: 64 });
  });

  it('one line with a stable code for a missing, unreadable, non-image or damaged file, or a mask of another size', async () => {
    const out = path.join(root, 'never.png');
    const text = path.join(root, 'notes.txt');
    writeFileSync(text, 'not a picture');
    const folder = path.join(root, 'a-folder.png');
    mkdirSync(folder, { recursive: true });
    const cut = path.join(root, 'cut.png');
    writeFileSync(cut, readFileSync(start).subarray(0, 100));
    const cases: [string[], RegExp][] = [
      [
        ['--init', path.join(root, 'nope.png')],
        /^atelier: The starting image .*nope\.png does not exist\. Check the path\. \[INPUT_IMAGE_NOT_FOUND\]\n$/,
      ],
      [
        ['--init', text],
        /^atelier: The starting image .*notes\.txt is not a PNG or JPEG file\..* \[INPUT_IMAGE_UNSUPPORTED_TYPE\]\n$/,
      ],
      [
        ['--init', folder],
        /^atelier: The starting image .*a-folder\.png could not be read \(it is a folder\)\..* \[INPUT_IMAGE_UNREADABLE\]\n$/,
      ],
      [['--init', cut], /^atelier: The starting image .*cut\.png could not be read .* \[INPUT_IMAGE_UNREADABLE\]\n$/],
      [
        ['--init', start, '--mask', path.join(root, 'gone.png')],
        /^atelier: The mask .*gone\.png does not exist.* \[INPUT_IMAGE_NOT_FOUND\]\n$/,
      ],
      [
        ['--init', start, '--mask', maskFile('small-mask.png', 32, 32, [0, 0, 8, 8])],
        /^atelier: The mask .*small-mask\.png is 32×32 pixels but the starting image .*start\.png is 64×64\. Save the mask at the image's size\. \[INPUT_IMAGE_SIZE_MISMATCH\]\n$/,
      ],
    ];
    for (const [args, expected] of cases) {
      const r = await atelier(['generate', 'x', '--steps', '2', ...args, '--out', out]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(expected);
    }
    expect(() => readFileSync(out)).toThrow();
  });

  it('--mask or --strength without --init, and a strength outside 0–1, are usage errors (exit 2)', async () => {
    const out = path.join(root, 'never.png');
    const noInit = await atelier(['generate', 'x', '--mask', 'm.png', '--strength', '0.5', '--out', out]);
    expect(noInit.code).toBe(2);
    expect(noInit.stderr).toBe(
      'atelier: invalid arguments: --mask needs --init <starting image>: the mask says which part of it to repaint; --strength needs --init <starting image>\n',
    );
    const high = await atelier(['generate', 'x', '--init', start, '--strength', '1.5', '--out', out]);
    expect(high.code).toBe(2);
    expect(high.stderr).toBe('atelier: invalid arguments: strength must be at most 1\n');
    const word = await atelier(['generate', 'x', '--init', start, '--strength', 'half', '--out', out]);
    expect(word.stderr).toBe('atelier: invalid arguments: strength must be a number (got "half")\n');
  });
});
