/** The job queue's cloud port (jobs.ts) on the desktop's cloud client. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  AppError,
  CloudInput,
  CreateInputResponse,
  inputLimitError,
  isInputRef,
  type CreateInputBody,
  type GenerateRequest,
  type InputPurpose,
} from '@atelier/common';
import { imageSize, sniffImage } from '@atelier/engine/pipeline/input-image';
import type { CloudClient } from './cloud-client.ts';
import type { CloudJobsPort } from './jobs.ts';

export interface CloudJobsPortOptions {
  /**
   * Where a library image's file is, downloaded first when only its thumbnail is here (throws
   * for an id that is not in the library, IMAGE_NOT_DOWNLOADED when it cannot be fetched).
   */
  library: { localPath(id: string): Promise<string> };
}

const FIELDS = [
  ['initImage', 'init', 'starting image'],
  ['mask', 'mask', 'mask'],
] as const satisfies readonly (readonly [keyof GenerateRequest, InputPurpose, string])[];

export function cloudJobsPort(cloud: CloudClient, opts: CloudJobsPortOptions): CloudJobsPort {
  async function readPicture(ref: string, what: string): Promise<Uint8Array> {
    let file: string;
    try {
      file = await opts.library.localPath(ref);
    } catch (e) {
      if (AppError.is(e, 'IMAGE_NOT_DOWNLOADED')) throw e;
      throw new AppError('INPUT_IMAGE_NOT_FOUND', `${what} ${ref} is not in the library`, {
        userMessage: `The ${what} is no longer in your library. Pick another picture.`,
      });
    }
    return new Uint8Array(await readFile(file));
  }

  async function put(upload: CreateInputResponse['upload'], body: Uint8Array): Promise<void> {
    const headers = { ...upload.headers };
    // The transfer sets content-length from the body (the URL is signed for exactly that length).
    delete headers['content-length'];
    await cloud.upload(upload.url, headers, body);
  }

  /**
   * A library picture → a cloud input id: reserve (the cloud checks the limits first), PUT the
   * bytes unless the cloud already has this file as a ready input, complete. The cloud reuses the
   * input for the same file, so a resend after a crash names the same id and the generation's
   * Idempotency-Key still matches.
   */
  async function upload(ref: string, purpose: InputPurpose, what: string): Promise<string> {
    const bytes = await readPicture(ref, what);
    const kind = sniffImage(bytes);
    const size = imageSize(bytes);
    if (!kind || !size)
      throw new AppError('INPUT_IMAGE_UNSUPPORTED_TYPE', `${what} ${ref} is not a PNG or JPEG file`, {
        userMessage: `The ${what} is not a PNG or JPEG file, so it cannot go to the cloud. Run it on this computer.`,
      });
    const body: CreateInputBody = {
      purpose,
      contentType: kind === 'png' ? 'image/png' : 'image/jpeg',
      byteLength: bytes.byteLength,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      width: size.width,
      height: size.height,
    };
    // Refused here, before a request: the same numbers the cloud checks.
    const limit = inputLimitError(body);
    if (limit) throw new AppError(limit.code, `${what} ${ref}: ${limit.message}`, { details: limit.details });
    const created = await cloud.request('POST', '/v1/inputs', CreateInputResponse, { body });
    if (created.input.status === 'ready') return created.inputId;
    await put(created.upload, bytes);
    await cloud.request('POST', `/v1/inputs/${encodeURIComponent(created.inputId)}/complete`, CloudInput, {
      body: {},
    });
    return created.inputId;
  }

  /** The request with every library picture it names replaced by the id of its cloud input. */
  async function withCloudInputs(req: GenerateRequest): Promise<GenerateRequest> {
    const out = { ...req };
    for (const [field, purpose, what] of FIELDS) {
      const ref = req[field];
      if (typeof ref !== 'string' || isInputRef(ref)) continue;
      out[field] = await upload(ref, purpose, what);
    }
    return out;
  }

  return {
    isOnline: () => cloud.state().online && cloud.state().signedIn,
    createGeneration: async (req, key) => cloud.api.createGeneration(await withCloudInputs(req), key),
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
