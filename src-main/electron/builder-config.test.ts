// electron-builder cannot produce installers on machines without Electron's binary, so the
// packaging config is checked here: valid against electron-builder's own schema, with the fuses,
// targets, deep-link protocol, publish feed and native unpacking the security review relies on.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../host/config.ts';

const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): unknown };
const Ajv = require('ajv') as new (o: object) => {
  compile(s: object): ((v: unknown) => boolean) & { errors?: unknown };
};

interface BuilderConfig {
  electronFuses: Record<string, boolean>;
  linux: { target: string[] };
  win: { target: string[]; verifyUpdateCodeSignature?: boolean; signtoolOptions?: { publisherName?: string[] } };
  mac: { target: string[]; hardenedRuntime?: boolean; notarize?: boolean };
  protocols: { schemes: string[] }[];
  publish: { provider: string; url: string }[];
  asar: boolean;
  asarUnpack: string[];
  files: string[];
}
const config = yaml.load(readFileSync(path.join(REPO_ROOT, 'electron-builder.yml'), 'utf8')) as BuilderConfig;

describe('electron-builder.yml', () => {
  it('is valid against electron-builder’s schema', () => {
    const schema = require('app-builder-lib/scheme.json') as object;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
  });
  it('sets the security fuses', () => {
    expect(config.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
    });
    expect(config.asar).toBe(true);
  });
  it('builds AppImage + deb, NSIS and dmg, registers atelier:// and publishes to a generic feed', () => {
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.win.target).toEqual(['nsis']);
    expect(config.mac.target).toEqual(['dmg', 'zip']);
    expect(config.protocols.flatMap((p) => p.schemes)).toEqual(['atelier']);
    expect(config.publish[0]).toMatchObject({ provider: 'generic' });
    expect(config.publish[0]!.url).toMatch(/^https:\/\//);
  });
  it('signs for updates: Windows installers are checked against a publisher, macOS is hardened and notarized', () => {
    expect(config.win.verifyUpdateCodeSignature).toBe(true);
    expect(config.win.signtoolOptions?.publisherName?.length).toBeGreaterThan(0);
    expect(config.mac).toMatchObject({ hardenedRuntime: true, notarize: true });
    // Squirrel.Mac downloads the zip; without it a mac install could never update.
    expect(config.mac.target).toContain('zip');
  });
  it('unpacks native add-ons and never ships the browser host or test helpers', () => {
    expect(config.asarUnpack.join(' ')).toMatch(/better-sqlite3/);
    expect(config.asarUnpack.join(' ')).toMatch(/onnxruntime-node/);
    expect(config.files).toContain('!src-main/host/**');
    expect(config.files).toContain('!src-main/services/testing/**');
  });
});
