/** Fixture models for engine tests, built fresh into a private temporary folder per test file. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { ResolvedGenerateRequest } from '@atelier/common';
import { FIXTURES, writeFixtureModel } from '../src/onnx-build/sd-fixture.ts';

export const NATIVE_DIR = path.resolve(import.meta.dirname, '..');
export const CLIP_DIR = path.join(NATIVE_DIR, 'fixtures/clip');

export interface Fixtures {
  root: string;
  sd: string;
  turbo: string;
  cleanup(): void;
}

export function buildFixtures(): Fixtures {
  const root = mkdtempSync(path.join(os.tmpdir(), 'atelier-engine-test-'));
  for (const spec of FIXTURES) writeFixtureModel(path.join(root, spec.id), spec, CLIP_DIR);
  return {
    root,
    sd: path.join(root, 'atelier-fixture-sd'),
    turbo: path.join(root, 'atelier-fixture-turbo'),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** A copy of a model folder to break on purpose. */
export function copyModel(src: string, root: string, name: string): string {
  const dst = path.join(root, name);
  cpSync(src, dst, { recursive: true });
  return dst;
}

/** Renames a graph input of an ONNX file in place (and every node input that reads it). */
export function renameOnnxInput(file: string, from: string, to: string): void {
  const { onnx } = onnxProto;
  const model = onnx.ModelProto.decode(readFileSync(file));
  const graph = model.graph!;
  for (const input of graph.input ?? []) if (input.name === from) input.name = to;
  for (const node of graph.node ?? []) node.input = (node.input ?? []).map((n) => (n === from ? to : n));
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
}

export function request(overrides: Partial<ResolvedGenerateRequest> = {}): ResolvedGenerateRequest {
  return {
    prompt: 'a lighthouse on a cliff at dusk',
    negativePrompt: 'blurry',
    width: 64,
    height: 64,
    steps: 4,
    guidance: 7.5,
    scheduler: 'euler_a',
    seed: 1234,
    model: 'atelier-fixture-sd',
    count: 1,
    target: 'local',
    ...overrides,
  };
}
