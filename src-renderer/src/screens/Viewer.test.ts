import { describe, expect, it } from 'vitest';
import { badgeOf } from '../components/CloudBadge.tsx';
import { syncHeadline, type SyncStatus } from '../components/SyncIndicator.tsx';
import { viewerPicture } from './Viewer.tsx';

const id = 'img_0000000000000000000001';
const img = (downloaded?: boolean) => ({
  id,
  url: `${id}.png`,
  thumbUrl: `${id}.thumb.png`,
  ...(downloaded === undefined ? {} : { downloaded }),
});

describe('an image whose full PNG is still in the cloud (issue 13)', () => {
  it('the Viewer shows the full image when it is here', () => {
    expect(viewerPicture(img(), null)).toEqual({ src: `${id}.png`, downloading: false, error: null, percent: null });
    expect(viewerPicture(img(true), { id, state: 'downloading' })).toMatchObject({ src: `${id}.png` });
  });

  it('shows the thumbnail with "Downloading full image…" meanwhile, never the missing file', () => {
    expect(viewerPicture(img(false), null)).toEqual({
      src: `${id}.thumb.png`,
      downloading: true,
      error: null,
      percent: null,
    });
    expect(viewerPicture(img(false), { id, state: 'downloading' })).toMatchObject({ downloading: true });
    // Another image's failure is not this one's.
    expect(viewerPicture(img(false), { id: 'img_x', state: 'failed', message: 'm' })).toMatchObject({
      downloading: true,
      error: null,
    });
  });

  it('says why it failed (with Retry beside it) on the thumbnail', () => {
    const message = 'You are offline, so the full image cannot be downloaded. Connect to the internet and try again.';
    expect(viewerPicture(img(false), { id, state: 'failed', message })).toEqual({
      src: `${id}.thumb.png`,
      downloading: false,
      error: message,
      percent: null,
    });
  });

  it('says how much of the full image has arrived once the size is known', () => {
    const d = (receivedBytes: number, totalBytes: number | null) =>
      viewerPicture(img(false), { id, state: 'downloading', receivedBytes, totalBytes });
    expect(d(0, null)).toMatchObject({ downloading: true, percent: null });
    expect(d(420_000, 1_000_000)).toMatchObject({ downloading: true, percent: 42 });
    expect(d(1_000_000, 1_000_000)).toMatchObject({ percent: 100 });
    // Another image's progress is not this one's.
    expect(
      viewerPicture(img(false), { id: 'img_x', state: 'downloading', receivedBytes: 5, totalBytes: 10 }),
    ).toMatchObject({ percent: null });
  });

  it('the gallery badge says "in the cloud, not downloaded yet" until it arrives', () => {
    expect(badgeOf('cloud', false)).toBe('remote');
    expect(badgeOf('cloud', undefined)).toBe('cloud');
    expect(badgeOf('local', undefined)).toBe('local');
    expect(badgeOf(undefined, false)).toBeNull();
  });

  it('the shell says the full images are still coming once the gallery itself is in sync', () => {
    const s: SyncStatus = {
      enabled: true,
      state: 'idle',
      lastSyncAt: null,
      pending: 0,
      error: null,
      downloads: { done: 3, total: 10, waiting: 7 },
    };
    expect(syncHeadline(s)).toEqual({ text: 'Downloading images 3 of 10', tone: 'busy' });
    expect(syncHeadline({ ...s, downloads: { done: 0, total: 0, waiting: 0 } })).toEqual({
      text: 'Gallery in sync',
      tone: 'ok',
    });
  });
});
