import { parseArgs } from 'node:util';
import { CATALOGUE, downloadCatalogueModel } from '../store/catalogue.ts';
import { createModelStore, type ModelEntry, type ModelStore } from '../store/store.ts';
import { EXIT, UsageError, type CliContext } from './errors.ts';
import { formatBytes, ProgressBar } from './output.ts';

const HELP = `Usage: atelier models <subcommand>

  list [--json]                         installed models: id, name, size, hash; * marks the default
  catalogue [--json]                    real models to download: Hugging Face repository, pinned
                                        commit, size, licence, hardware
  download <catalogue-id>               download a catalogue model from Hugging Face, file by file
                                        (checked against the hub's hashes; resumes when run again)
  download <url> [--sha256 <hex>] [--id <id>]
                                        download a model from a JSON manifest URL
                                        ({ "files": [{ "path", "url", "sha256", "size" }] })
  import <folder> [--link] [--id <id>]  copy (or link) an ONNX Stable Diffusion folder into the store
  remove <id>                           delete an installed model (a linked folder is left alone)
  default [<id>]                        show or set the default model`;

export function openStore(ctx: CliContext): ModelStore {
  return createModelStore({
    modelsDir: ctx.config.modelsDir,
    ...(ctx.config.fixtureDirs ? { fixtureDirs: ctx.config.fixtureDirs } : {}),
    ...(ctx.config.bundledDirs ? { bundledDirs: ctx.config.bundledDirs } : {}),
    // Imports and downloads are accepted only if the engine can really open them: graph inputs,
    // shapes and channel counts, not just the files being there.
    validate: async (dir) => {
      const { loadModel } = await import('../pipeline/diffusion-model.ts');
      const model = await loadModel({ modelDir: dir, sessionOptions: { graphOptimizationLevel: 'basic' } });
      await model.dispose();
    },
  });
}

export async function modelsCommand(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  const { stdout } = ctx.io;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    stdout.write(`${HELP}\n`);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  const store = openStore(ctx);
  switch (sub) {
    case 'list': {
      const { values } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      });
      if (values.help) return help(ctx, 'list [--json]');
      const models = await store.list();
      if (values.json) stdout.write(`${JSON.stringify(models, null, 2)}\n`);
      else stdout.write(table(models, store.modelsDir));
      return EXIT.ok;
    }
    case 'catalogue':
    case 'catalog': {
      const { values } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      });
      if (values.help) return help(ctx, 'catalogue [--json]');
      const installed = new Set((await store.list()).map((m) => m.id));
      if (values.json) {
        stdout.write(`${JSON.stringify(
          CATALOGUE.map((e) => ({ ...e, installed: installed.has(e.id) })),
          null,
          2,
        )}
`);
        return EXIT.ok;
      }
      for (const e of CATALOGUE)
        stdout.write(
          `${e.id}${installed.has(e.id) ? '  (installed)' : ''}
  ${e.name}: ${e.description}
  https://huggingface.co/${e.repo} at ${e.revision}
  about ${formatBytes(e.sizeBytes)} · licence: ${e.licence.name} (${e.licence.url})
  hardware: ${e.hardware}

`,
        );
      stdout.write(`Download one with: atelier models download <id>   (into ${store.modelsDir})
`);
      return EXIT.ok;
    }
    case 'import': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { link: { type: 'boolean' }, id: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      });
      if (values.help) return help(ctx, 'import <folder> [--link] [--id <id>]');
      const [dir, extra] = positionals;
      if (!dir || extra) throw new UsageError('models import takes exactly one folder');
      const e = await store.importFolder(dir, { link: values.link ?? false, ...(values.id ? { id: values.id } : {}) });
      stdout.write(
        `${values.link ? 'linked' : 'imported'} ${e.id} (${formatBytes(e.size)}, sha256 ${e.sha256.slice(0, 12)}) → ${e.dir}\n`,
      );
      return EXIT.ok;
    }
    case 'download': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { sha256: { type: 'string' }, id: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      });
      if (values.help) return help(ctx, 'download <manifest-url> [--sha256 <hex>] [--id <id>]');
      const [url, extra] = positionals;
      if (!url || extra) throw new UsageError('models download takes one catalogue id or one manifest URL');
      if (!url.includes('://')) {
        if (values.sha256 || values.id)
          throw new UsageError('--sha256 and --id are for manifest URLs; a catalogue model is pinned by its entry');
        const bar = new ProgressBar(ctx.io.stderr);
        try {
          const e = await downloadCatalogueModel(store, url, {
            signal: ctx.signal,
            onProgress: (p) =>
              bar.update(
                `downloading ${p.fileIndex + 1}/${p.fileCount}`,
                p.receivedBytes,
                p.totalBytes,
                `${formatBytes(p.receivedBytes)} / ${formatBytes(p.totalBytes)} ${p.file}`,
              ),
          });
          bar.done();
          stdout.write(`downloaded ${e.id} (${formatBytes(e.size)}) → ${e.dir}
`);
        } finally {
          bar.done();
        }
        return EXIT.ok;
      }
      if (values.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(values.sha256))
        throw new UsageError('--sha256 must be 64 hex digits');
      const bar = new ProgressBar(ctx.io.stderr);
      try {
        const e = await store.download(url, {
          signal: ctx.signal,
          ...(values.sha256 ? { sha256: values.sha256 } : {}),
          ...(values.id ? { id: values.id } : {}),
          onProgress: (p) =>
            bar.update(
              `downloading ${p.fileIndex + 1}/${p.fileCount}`,
              p.receivedBytes,
              p.totalBytes,
              `${formatBytes(p.receivedBytes)} / ${formatBytes(p.totalBytes)} ${p.file}`,
            ),
        });
        bar.done();
        stdout.write(`downloaded ${e.id} (${formatBytes(e.size)}, sha256 ${e.sha256.slice(0, 12)}) → ${e.dir}\n`);
      } finally {
        bar.done();
      }
      return EXIT.ok;
    }
    case 'remove': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { help: { type: 'boolean', short: 'h' } },
      });
      if (values.help) return help(ctx, 'remove <id>');
      const [id, extra] = positionals;
      if (!id || extra) throw new UsageError('models remove takes exactly one model id');
      await store.remove(id);
      stdout.write(`removed ${id}\n`);
      return EXIT.ok;
    }
    case 'default': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { help: { type: 'boolean', short: 'h' } },
      });
      if (values.help) return help(ctx, 'default [<id>]');
      const [id, extra] = positionals;
      if (extra) throw new UsageError('models default takes at most one model id');
      if (id) {
        const e = await store.setDefault(id);
        stdout.write(`default model: ${e.id}\n`);
      } else {
        const e = await store.defaultModel();
        stdout.write(e ? `${e.id}\n` : 'no model installed\n');
        if (!e) return EXIT.failure;
      }
      return EXIT.ok;
    }
    default:
      throw new UsageError(`unknown models subcommand "${sub}" (list, catalogue, download, import, remove, default)`);
  }
}

function help(ctx: CliContext, usage: string): number {
  ctx.io.stdout.write(`Usage: atelier models ${usage}\n\n${HELP.split('\n').slice(2).join('\n')}\n`);
  return EXIT.ok;
}

function table(models: ModelEntry[], modelsDir: string): string {
  if (models.length === 0)
    return `No models installed in ${modelsDir}.\nDownload a real one (atelier models catalogue) or import a folder: atelier models import <folder>\n`;
  const rows = [
    ['', 'ID', 'NAME', 'SIZE', 'SHA256', 'SOURCE'],
    ...models.map((m) => [
      m.isDefault ? '*' : '',
      m.id,
      m.fixture ? `${m.name} — test fixture, random weights (draws noise)` : m.name,
      formatBytes(m.size),
      m.sha256.slice(0, 12),
      m.kind,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const header = `Models folder: ${modelsDir} (the CLI's; the desktop app keeps its own in its profile, <profile>/models — set ATELIER_MODELS_DIR to the same folder to share)\n`;
  return `${header}${rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}
