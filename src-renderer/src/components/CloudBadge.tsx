/**
 * Where a gallery image lives (issue 13): only on this computer, uploading (or waiting to), or
 * in the cloud. Absent in local-only mode, where the question does not arise.
 */
import type { LibraryImage } from '@atelier/common';

const LABELS = {
  local: 'Only on this computer',
  uploading: 'Uploading to the cloud',
  cloud: 'In the cloud',
} as const;
const GLYPHS = { local: '⌂', uploading: '⇡', cloud: '☁' } as const;

export function CloudBadge({ place }: { place: LibraryImage['cloud'] }) {
  if (!place) return null;
  return (
    <span className={`cloud-badge cloud-badge-${place}`} title={LABELS[place]} data-cloud={place}>
      <span aria-hidden="true">{GLYPHS[place]}</span>
      <span className="sr-only">{LABELS[place]}</span>
    </span>
  );
}
