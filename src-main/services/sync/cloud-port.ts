/** The sync engine's cloud port on the desktop's cloud client (typed API calls) and fetch (S3). */
import {
  AppError,
  CompleteUploadsResponse,
  CreateUploadsResponse,
  SyncChangesPage,
  SyncEditsResponse,
  type CreateUploadBody,
  type PresignedPut,
  type SyncEdit,
} from '@atelier/common';
import type { CloudClient, FetchFn } from '../cloud-client.ts';
import type { SyncCloudPort } from './sync-engine.ts';

export function cloudSyncPort(cloud: CloudClient, fetchFn: FetchFn = fetch): SyncCloudPort {
  return {
    account: () => (cloud.state().signedIn ? (cloud.tokens()?.username ?? null) : null),
    // The batch routes (decision 0146): one call per up to 100 images instead of two per image.
    createUploads: async (items: CreateUploadBody[]) =>
      (await cloud.request('POST', '/v1/uploads/batch', CreateUploadsResponse, { body: { items } })).results,
    completeUploads: async (ids: string[]) =>
      (await cloud.request('POST', '/v1/uploads/complete', CompleteUploadsResponse, { body: { ids } })).results,
    changes: (cursor: string, limit: number) =>
      cloud.request(
        'GET',
        `/v1/sync/changes?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        SyncChangesPage,
      ),
    edits: async (edits: SyncEdit[]) =>
      (await cloud.request('POST', '/v1/sync/edits', SyncEditsResponse, { body: { edits } })).results,
    async put(put: PresignedPut, body: Uint8Array) {
      const headers = { ...put.headers };
      // fetch sets content-length from the body (the URL is signed for exactly that length).
      delete headers['content-length'];
      let res: Response;
      try {
        res = await fetchFn(put.url, { method: 'PUT', headers, body, signal: AbortSignal.timeout(300_000) });
      } catch (e) {
        throw new AppError('OFFLINE', `upload failed: ${(e as Error).message}`, { cause: e });
      }
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok)
        throw new AppError('STORAGE_UNAVAILABLE', `upload HTTP ${res.status}`, { retryable: res.status >= 500 });
    },
    download: (url: string) => cloud.download(url),
    image: (id: string) => cloud.api.getImage(id),
    storage: async () => (await cloud.api.me()).storage ?? null,
  };
}
