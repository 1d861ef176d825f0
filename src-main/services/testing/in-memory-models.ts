/** A model store double: a fixed list of installed models (the engine's store is tested in native/). */
import { AppError } from '@atelier/common';
import type { InstalledModelValue, ModelDownloadValue, ModelStorePort } from '../engine.ts';

export class InMemoryModels implements ModelStorePort {
  items: InstalledModelValue[];
  constructor(
    items: InstalledModelValue[] = [
      {
        id: 'fixture',
        name: 'Fixture',
        path: '/models/fixture',
        sizeBytes: 1,
        sha256: '0'.repeat(64),
        isDefault: true,
      },
    ],
  ) {
    this.items = items;
  }
  async list() {
    return this.items;
  }
  async import(p: string): Promise<InstalledModelValue> {
    const m = {
      id: p.split('/').pop()!.toLowerCase(),
      name: p,
      path: p,
      sizeBytes: 1,
      sha256: '0'.repeat(64),
      isDefault: false,
    };
    this.items.push(m);
    return m;
  }
  async download(): Promise<ModelDownloadValue> {
    throw new AppError('DOWNLOAD_FAILED', 'no network in tests');
  }
  downloads() {
    return [];
  }
  async cancelDownload() {}
  async remove(id: string) {
    this.items = this.items.filter((m) => m.id !== id);
  }
}
