import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The engine's version (native/package.json), recorded in every image's metadata. */
export const ENGINE_VERSION: string = (
  JSON.parse(readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
).version;
