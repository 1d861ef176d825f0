/**
 * Where a gallery image lives (issue 13): only on this computer, uploading (or waiting to), in
 * the cloud, or in the cloud with only its thumbnail here so far (the full image downloads in
 * the background, or when opened). Absent in local-only mode, where the question does not arise.
 */
import type { LibraryImage } from '@atelier/common';

const LABELS = {
  local: 'Only on this computer',
  uploading: 'Uploading to the cloud',
  cloud: 'In the cloud',
  remote: 'In the cloud, not downloaded yet',
} as const;
const GLYPHS = { local: '⌂', uploading: '⇡', cloud: '☁', remote: '⇣' } as const;

/** The badge of a gallery image; `remote` when it is in the cloud and its full image is not here yet. */
export function badgeOf(place: LibraryImage['cloud'], downloaded?: boolean): keyof typeof LABELS | null {
  if (!place) return null;
  return place === 'cloud' && downloaded === false ? 'remote' : place;
}

export function CloudBadge({ place, downloaded }: { place: LibraryImage['cloud']; downloaded?: boolean | undefined }) {
  const badge = badgeOf(place, downloaded);
  if (!badge) return null;
  return (
    // data-cloud stays the place (tests and tools compare it between devices); data-downloaded says the rest.
    <span
      className={`cloud-badge cloud-badge-${badge}`}
      title={LABELS[badge]}
      data-cloud={place}
      data-downloaded={badge === 'remote' ? 'false' : undefined}
    >
      <span aria-hidden="true">{GLYPHS[badge]}</span>
      <span className="sr-only">{LABELS[badge]}</span>
    </span>
  );
}
