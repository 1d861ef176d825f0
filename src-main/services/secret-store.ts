/**
 * Where the refresh token lives. The port lets the Electron shell use safeStorage (OS keychain)
 * while the browser host and tests use 0600 files. An implementation that cannot keep a secret
 * safely throws SECRET_STORE_UNAVAILABLE from `set` rather than writing it in the clear.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface SecretStore {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

const safeKey = (key: string) => {
  if (!/^[a-z0-9._-]+$/i.test(key)) throw new Error(`invalid secret key ${JSON.stringify(key)}`);
  return key;
};

/** One file per secret, mode 0600 inside a 0700 folder; for the browser host and tests only. */
export class FileSecretStore implements SecretStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  async get(key: string): Promise<string | null> {
    try {
      return readFileSync(path.join(this.dir, safeKey(key)), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }
  async set(key: string, value: string): Promise<void> {
    const file = path.join(this.dir, safeKey(key));
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, value, { mode: 0o600 });
    renameSync(tmp, file);
  }
  async delete(key: string): Promise<void> {
    rmSync(path.join(this.dir, safeKey(key)), { force: true });
  }
}

export class InMemorySecretStore implements SecretStore {
  readonly values = new Map<string, string>();
  async get(key: string): Promise<string | null> {
    return this.values.get(key) ?? null;
  }
  async set(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
}
