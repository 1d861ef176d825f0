/** The job queue's cloud port (jobs.ts) on the desktop's cloud client. */
import { AppError } from '@atelier/common';
import type { CloudClient } from './cloud-client.ts';
import type { CloudJobsPort } from './jobs.ts';

export function cloudJobsPort(cloud: CloudClient): CloudJobsPort {
  return {
    isOnline: () => cloud.state().online && cloud.state().signedIn,
    createGeneration: (req, key) => cloud.api.createGeneration(req, key),
    getGeneration: (id) => cloud.api.getGeneration(id),
    cancelGeneration: async (id) => {
      await cloud.api.cancelGeneration(id);
    },
    fetchImage: async (imageId) => {
      const image = await cloud.api.getImage(imageId);
      if (!image.url) throw new AppError('STORAGE_UNAVAILABLE', `no download URL for ${imageId}`);
      return { png: await cloud.download(image.url), metadata: image.metadata };
    },
  };
}
