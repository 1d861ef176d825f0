/**
 * SafeStorageSecretStore: secrets encrypted with Electron's safeStorage (Keychain, DPAPI,
 * libsecret/KWallet), one 0600 file each. Refuses to store when only Chromium's `basic_text`
 * backend exists: the user then stays signed in for this run only.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { safeStorage } from 'electron';
import { AppError } from '@atelier/common';
import type { SecretStore } from '../services/secret-store.ts';
import { canStoreSecrets } from './policy.ts';

export class SafeStorageSecretStore implements SecretStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  private usable(): boolean {
    return canStoreSecrets({
      encryptionAvailable: safeStorage.isEncryptionAvailable(),
      platform: process.platform,
      linuxBackend: process.platform === 'linux' ? safeStorage.getSelectedStorageBackend() : null,
    });
  }
  private file(key: string): string {
    if (!/^[a-z0-9._-]+$/i.test(key)) throw new Error(`invalid secret key ${JSON.stringify(key)}`);
    return path.join(this.dir, `${key}.enc`);
  }
  async get(key: string): Promise<string | null> {
    let data: Buffer;
    try {
      data = readFileSync(this.file(key));
    } catch {
      return null;
    }
    if (!this.usable()) return null;
    try {
      return safeStorage.decryptString(data);
    } catch {
      // Encrypted under another OS account or keyring: unusable, forget it.
      rmSync(this.file(key), { force: true });
      return null;
    }
  }
  async set(key: string, value: string): Promise<void> {
    if (!this.usable())
      throw new AppError('SECRET_STORE_UNAVAILABLE', 'safeStorage has no secure backend (basic_text)');
    const file = this.file(key);
    writeFileSync(`${file}.tmp`, safeStorage.encryptString(value), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
  async delete(key: string): Promise<void> {
    rmSync(this.file(key), { force: true });
  }
}
