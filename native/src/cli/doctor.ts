import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { bestProvider, detectProviders, onnxruntimeVersion } from '../providers/detect.ts';
import { physicalCores, resolveThreads } from '../providers/threads.ts';
import { EXIT, type CliContext } from './errors.ts';
import { openStore } from './models.ts';
import { formatBytes } from './output.ts';

const HELP = `Usage: atelier doctor [--json]

Checks what this machine can run: each execution provider (usable or why not, and what to do),
the thread count, the models folder and the installed models. Exits 1 when something blocks
generation.`;

export async function doctorCommand(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    ctx.io.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  const providers = await detectProviders({ environment: ctx.config.providerEnv });
  const best = bestProvider(providers);
  const threads = resolveThreads(ctx.config.providerEnv.threads);
  const problems: { blocking: boolean; text: string }[] = [];
  const modelsDir = ctx.config.modelsDir;
  let modelsDirOk = true;
  try {
    await mkdir(modelsDir, { recursive: true });
    await access(modelsDir, constants.W_OK);
  } catch {
    modelsDirOk = false;
    problems.push({
      blocking: false,
      text: `the models folder ${modelsDir} is not writable: fix its permissions or set ATELIER_MODELS_DIR`,
    });
  }
  const models = await openStore(ctx)
    .list()
    .catch(() => []);
  const def = models.find((m) => m.isDefault);

  if (!best) problems.push({ blocking: true, text: 'no execution provider is usable: reinstall with npm ci' });
  else if (!best.gpu)
    problems.push({
      blocking: false,
      text: 'no GPU provider is usable, so images are generated on the CPU (slow: minutes per 512×512 image with a real model); see the reasons above, or run in the cloud',
    });
  if (models.length === 0)
    problems.push({
      blocking: true,
      text: 'no model is installed: `atelier models import <folder>` (an ONNX Stable Diffusion export), or `npm run models:fixture` in a checkout',
    });

  const report = {
    engine: {
      onnxruntime: onnxruntimeVersion(),
      node: process.versions.node,
      platform: `${process.platform} ${process.arch}`,
    },
    threads: { intraOp: threads, interOp: 1, physicalCores: physicalCores(), logicalCpus: os.availableParallelism() },
    providers,
    bestProvider: best?.name ?? null,
    modelsDir: { path: modelsDir, writable: modelsDirOk },
    cacheDir: ctx.config.cacheDir,
    models: models.map((m) => ({
      id: m.id,
      name: m.name,
      size: m.size,
      sha256: m.sha256,
      root: m.root,
      isDefault: m.isDefault,
    })),
    defaultModel: def?.id ?? null,
    problems: problems.map((p) => p.text),
  };
  const { stdout } = ctx.io;
  if (values.json) stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `Atelier doctor`,
      `engine      onnxruntime-node ${report.engine.onnxruntime} on Node ${report.engine.node} (${report.engine.platform})`,
      `threads     ${threads} intra-op, 1 inter-op (${report.threads.physicalCores} physical cores, ${report.threads.logicalCpus} logical CPUs; change with ATELIER_THREADS or --threads)`,
      `providers`,
      ...providers.map(
        (p) =>
          `  ${p.usable ? '✔' : '✘'} ${p.label.padEnd(9)} ${p.usable ? 'usable' : 'not usable'}${p.gpu ? ' (GPU)' : ''}: ${p.reason}`,
      ),
      `  best: ${best ? best.label : 'none'}`,
      `models dir  ${modelsDir}${modelsDirOk ? '' : ' (not writable)'}`,
      `cache dir   ${ctx.config.cacheDir}`,
      `models      ${models.length} installed${def ? `, default ${def.id}` : ''}`,
      ...models.map(
        (m) =>
          `  ${m.isDefault ? '*' : ' '} ${m.id} (${m.root === 'fixtures' ? 'fixture' : m.kind}, ${formatBytes(m.size)})`,
      ),
      problems.length ? 'to do' : 'everything needed to generate is in place',
      ...problems.map((p) => `  - ${p.text}`),
    ];
    stdout.write(`${lines.join('\n')}\n`);
  }
  return problems.some((p) => p.blocking) ? EXIT.failure : EXIT.ok;
}
