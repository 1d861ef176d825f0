import { copyFileSync, cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPngMetadata } from '../pipeline/metadata.ts';
import { cliSandbox, runCli, type CliRun } from './cli-test-support.ts';
import { resolveThreads } from '../providers/threads.ts';

let root: string;
let env: NodeJS.ProcessEnv;

function atelier(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runCli(args, { ...env, ...extraEnv });
}

beforeAll(() => {
  ({ root, env } = cliSandbox('atelier-cli-test-', process.env));
  delete env.ATELIER_THREADS;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function serveFolder(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url!, 'http://x').pathname.slice(1));
    const file = path.join(dir, rel);
    if (!file.startsWith(dir + path.sep) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('atelier CLI', () => {
  it('generates into a folder with the default model and prints seed and path', async () => {
    const out = path.join(root, 'out');
    const r = await atelier([
      'generate',
      'a red fox in snow',
      '--steps',
      '3',
      '--width',
      '64',
      '--height',
      '64',
      '--seed',
      '7',
      '--count',
      '2',
      '--out',
      out,
    ]);
    expect(r.stderr).toMatch(/2 images in [\d.]+ s on cpu \(atelier-fixture-sd\)/);
    expect(r.stderr).toContain('note: atelier-fixture-sd is a test fixture with random weights: it draws noise.');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual([
      `seed 7  ${path.join(out, 'atelier-fixture-sd-7.png')}`,
      `seed 8  ${path.join(out, 'atelier-fixture-sd-8.png')}`,
    ]);
    const png = readFileSync(path.join(out, 'atelier-fixture-sd-8.png'));
    expect(readPngMetadata(png)).toMatchObject({ seed: 8, steps: 3, positive_prompt: 'a red fox in snow', width: 64 });
    // Not a terminal: plain progress lines, no carriage-return redraws.
    expect(r.stderr).toMatch(/image 2\/2 100% step 3\/3/);
    expect(r.stderr).not.toContain('\r');
  });

  it('draws a random seed when none is given and reports it', async () => {
    const file = path.join(root, 'one.png');
    const r = await atelier([
      'generate',
      'a boat',
      '--model',
      'atelier-fixture-turbo',
      '--steps',
      '2',
      '--guidance',
      '0',
      '--scheduler',
      'lcm',
      '--width',
      '64',
      '--height',
      '64',
      '--out',
      file,
    ]);
    expect(r.code).toBe(0);
    const seed = Number(/^seed (\d+) {2}/.exec(r.stdout)?.[1]);
    expect(Number.isInteger(seed)).toBe(true);
    expect(readPngMetadata(readFileSync(file))).toMatchObject({
      seed,
      scheduler: 'lcm',
      model: { name: 'atelier-fixture-turbo' },
    });
  });

  it('refuses bad input with exit code 2 and one line naming every bad field', async () => {
    const r = await atelier([
      'generate',
      'x',
      '--steps',
      'many',
      '--width',
      '100',
      '--scheduler',
      'magic',
      '--out',
      root,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/steps must be a number \(got "many"\)/);
    // Each field named once, never "width: width must…".
    expect(r.stderr).toMatch(/; width must be a multiple of 8/);
    expect(r.stderr).not.toMatch(/(\w+): \1 /);
    expect(r.stderr).toMatch(/scheduler:/);
    expect(r.stderr).not.toMatch(/Invalid input|expected .*, received/);

    // An oversized seed is out of range, not "not a whole number".
    const seed = await atelier(['generate', 'x', '--seed', '99999999999999999999', '--out', root]);
    expect(seed.code).toBe(2);
    expect(seed.stderr).toBe(
      'atelier: invalid arguments: seed is out of range: use 0 to 4294967295, or leave it out for a random one (got 99999999999999999999)\n',
    );
    // No prompt: said once.
    const none = await atelier(['generate', '--out', root]);
    expect(none.stderr.match(/prompt/g)).toHaveLength(1);

    const unknown = await atelier(['generate', 'x', '--out', root, '--bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^atelier: .*--bogus/);
    expect((await atelier(['frobnicate'])).code).toBe(2);
    const missingModel = await atelier(['generate', 'x', '--model', 'nope', '--steps', '1', '--out', root]);
    expect(missingModel.code).toBe(1);
    expect(missingModel.stderr).toMatch(
      /^atelier: No installed model "nope" \(installed: atelier-fixture-sd, atelier-fixture-turbo\)/,
    );
  });

  it('doctor reports the CPU provider usable with the thread count', async () => {
    const r = await atelier(['doctor']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✔ CPU\s+usable/);
    expect(r.stdout).toContain(`threads     ${resolveThreads()} intra-op`);
    expect(r.stdout).toMatch(/✘ DirectML\s+not usable \(GPU\): DirectML is available on Windows only/);
    expect(r.stdout).toMatch(/\* atelier-fixture-sd/);
    const json = JSON.parse((await atelier(['doctor', '--json'], { ATELIER_THREADS: '1' })).stdout);
    expect(json.threads.intraOp).toBe(1);
    expect(json.providers.find((p: { name: string }) => p.name === 'cpu')).toMatchObject({ usable: true });
  });

  it('manages models: import, list, default, remove; every command has --help', async () => {
    const imported = await atelier([
      'models',
      'import',
      path.join(root, 'fixtures', 'atelier-fixture-sd'),
      '--id',
      'my-sd',
    ]);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/^imported my-sd \(/);
    expect((await atelier(['models', 'default', 'my-sd'])).code).toBe(0);
    const list = await atelier(['models', 'list']);
    expect(list.stdout).toMatch(/^\*\s+my-sd\s/m);
    // Which folder, said plainly; fixtures labelled as what they are.
    expect(list.stdout).toMatch(/^Models folder: .*the desktop app keeps its own/);
    expect(list.stdout).toMatch(/atelier-fixture-sd\s+.*test fixture, random weights \(draws noise\)/);
    expect(list.stdout).not.toMatch(/my-sd\s+.*test fixture/);
    const catalogue = await atelier(['models', 'catalogue']);
    expect(catalogue.code).toBe(0);
    expect(catalogue.stdout).toMatch(
      /^sd-turbo\n.*\n {2}https:\/\/huggingface\.co\/onnxruntime\/sd-turbo at [0-9a-f]{40}\n {2}about .* licence: /m,
    );
    expect(catalogue.stdout).toMatch(/^stable-diffusion-v1-5$/m);
    const unknownModel = await atelier(['models', 'download', 'sdxl-turbo']);
    expect(unknownModel.code).toBe(1);
    expect(unknownModel.stderr).toBe(
      'atelier: There is no catalogue model "sdxl-turbo". Choose one of: sd-turbo, stable-diffusion-v1-5. [NOT_FOUND]\n',
    );
    const removed = await atelier(['models', 'remove', 'my-sd']);
    expect(removed.code).toBe(0);
    expect((await atelier(['models', 'default'])).stdout.trim()).toBe('atelier-fixture-sd');
    // Deep validation by the engine: the files are all there, but the VAE graph is the wrong one.
    const wrong = path.join(root, 'wrong-vae');
    cpSync(path.join(root, 'fixtures', 'atelier-fixture-sd'), wrong, { recursive: true });
    copyFileSync(path.join(wrong, 'text_encoder', 'model.onnx'), path.join(wrong, 'vae_decoder', 'model.onnx'));
    const refused = await atelier(['models', 'import', wrong]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^atelier: .*vae_decoder/);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    const again = await atelier(['models', 'remove', 'my-sd']);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    const helps = [['--help'], ['generate', '--help'], ['models', 'import', '--help'], ['doctor', '--help']];
    for (const h of await Promise.all(helps.map((args) => atelier(args)))) {
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(/^Usage: atelier/);
    }
  });

  it('downloads a model from a manifest URL, verifies it and installs it', async () => {
    const src = path.join(root, 'fixtures', 'atelier-fixture-turbo');
    const files: { path: string; url: string; sha256: string; size: number }[] = [];
    const walk = (rel: string) => {
      for (const name of readdirSync(path.join(src, rel))) {
        if (name.startsWith('.')) continue;
        const r = rel ? `${rel}/${name}` : name;
        if (statSync(path.join(src, r)).isDirectory()) walk(r);
        else {
          const bytes = readFileSync(path.join(src, r));
          files.push({
            path: r,
            url: `files/${r}`,
            sha256: createHash('sha256').update(bytes).digest('hex'),
            size: bytes.length,
          });
        }
      }
    };
    walk('');
    const site = path.join(root, 'site');
    cpSync(src, path.join(site, 'files'), { recursive: true });
    const manifest = JSON.stringify({ id: 'turbo-dl', name: 'Turbo (downloaded)', files });
    writeFileSync(path.join(site, 'manifest.json'), manifest);
    const server = await serveFolder(site);
    try {
      const pin = createHash('sha256').update(manifest).digest('hex');
      const r = await atelier(['models', 'download', `${server.url}/manifest.json`, '--sha256', pin]);
      expect(r.stderr).toMatch(/downloading \d+\/\d+ 100%/);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^downloaded turbo-dl \(/);
      const list = JSON.parse((await atelier(['models', 'list', '--json'])).stdout) as { id: string; sha256: string }[];
      const fixtureHash = list.find((m) => m.id === 'atelier-fixture-turbo')!.sha256;
      expect(list.find((m) => m.id === 'turbo-dl')).toMatchObject({ sha256: fixtureHash, kind: 'download' });
      const bad = await atelier([
        'models',
        'download',
        `${server.url}/manifest.json`,
        '--sha256',
        '0'.repeat(64),
        '--id',
        'x',
      ]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^atelier: The downloaded file does not match its checksum/);
    } finally {
      await server.close();
    }
  });
});
