/** The sync engine's cloud port on the desktop's cloud client: typed API calls, and object transfers (S3). */
import {
  CompleteUploadsResponse,
  CreateUploadsResponse,
  SyncChangesPage,
  SyncEditsResponse,
  type CreateUploadBody,
  type PresignedPut,
  type SyncEdit,
} from '@atelier/common';
import type { CloudClient } from '../cloud-client.ts';
import type { SyncCloudPort } from './sync-engine.ts';

/** The transfer sets content-length from the body (the URL is signed for exactly that length). */
function unsized(headers: Record<string, string>): Record<string, string> {
  const { 'content-length': _length, ...rest } = headers;
  return rest;
}

export function cloudSyncPort(cloud: CloudClient): SyncCloudPort {
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
    put: (put: PresignedPut, body: Uint8Array) => cloud.upload(put.url, unsized(put.headers), body),
    putFile: (put: PresignedPut, file: string, expect: { size: number; sha256: string }) =>
      cloud.uploadFile(put.url, unsized(put.headers), file, expect),
    download: (url: string) => cloud.download(url),
    downloadFile: (
      url: string,
      file: string,
      durable = true,
      onProgress?: (receivedBytes: number, totalBytes: number | null) => void,
    ) => cloud.downloadFile(url, file, { fsync: durable, ...(onProgress ? { onProgress } : {}) }),
    image: (id: string) => cloud.api.getImage(id),
    storage: async () => (await cloud.api.me()).storage ?? null,
  };
}
