/**
 * Starting from a picture (issue 15): the Generate panel's starting image with its strength and
 * mask, the Viewer's "Use as starting image", and the thumbnails job cards and the Viewer show of
 * what a run started from.
 */
import { DEFAULT_STRENGTH, generationModeOf, type LibraryImage } from '@atelier/common';
import { useEffect, useId, useRef, useState } from 'react';
import { useS, useStores } from '../stores/index.ts';
import { MaskEditor } from './MaskEditor.tsx';

const MODE_LABEL = { txt2img: 'Text to image', img2img: 'Image to image', inpaint: 'Inpainting' } as const;

const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');

/** The Generate panel's starting image: drop or pick one, remove it, set the strength, paint a mask. */
export function StartImagePanel({ width, height }: { width: string; height: string }) {
  const { start } = useStores();
  const picture = useS(start, (s) => s.picture);
  const strength = useS(start, (s) => s.strength);
  const editing = useS(start, (s) => s.editing);
  const busy = useS(start, (s) => s.busy);
  const error = useS(start, (s) => s.error);
  useS(start, (s) => s.rev);
  const masked = useS(start, (s) => !!s.mask && !s.mask.isEmpty());
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const uid = useId();

  // Dropping a file anywhere on the Generate screen starts from it (the panel is mounted only there).
  useEffect(() => {
    let depth = 0;
    const over = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    };
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth++;
      setDragging(true);
    };
    const leave = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) setDragging(false);
    };
    const drop = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      setDragging(false);
      const file = e.dataTransfer?.files[0];
      if (file) void start.getState().importFile(file);
    };
    window.addEventListener('dragover', over);
    window.addEventListener('dragenter', enter);
    window.addEventListener('dragleave', leave);
    window.addEventListener('drop', drop);
    return () => {
      window.removeEventListener('dragover', over);
      window.removeEventListener('dragenter', enter);
      window.removeEventListener('dragleave', leave);
      window.removeEventListener('drop', drop);
    };
  }, [start]);

  const s = start.getState();
  const mode = generationModeOf({ initImage: picture?.id, mask: masked ? 'mask' : undefined });
  const resized =
    picture && (String(picture.width) !== width || String(picture.height) !== height)
      ? `The picture is ${picture.width} × ${picture.height}; it is resized to the size below.`
      : null;
  return (
    <section
      className={`field start-image ${dragging ? 'start-image-drop' : ''}`}
      aria-labelledby={`${uid}-h`}
      data-testid="start-image"
    >
      {picture && (
        <div className="row space">
          <span className="label" id={`${uid}-h`}>
            Starting image
          </span>
          <span className="badge" data-testid="generation-mode">
            {MODE_LABEL[mode]}
          </span>
        </div>
      )}
      <input
        ref={picker}
        type="file"
        accept="image/png,image/jpeg,.png,.jpg,.jpeg"
        hidden
        aria-label="Choose a starting image file"
        onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) void s.importFile(file);
        }}
      />
      {!picture ? (
        // One line while empty: the panel stays out of the way of a text-only run.
        <div className="start-drop">
          <span className="label" id={`${uid}-h`}>
            Starting image
          </span>
          <span className="muted small grow">
            {dragging ? 'Drop the picture to start from it.' : 'Drop a PNG or JPEG here, or Shift+I in the viewer.'}
          </span>
          <span className="sr-only" data-testid="generation-mode">
            {MODE_LABEL[mode]}
          </span>
          <button
            type="button"
            className="btn btn-small"
            onClick={() => picker.current?.click()}
            disabled={busy}
            aria-busy={busy}
          >
            {busy ? 'Reading…' : 'Choose a picture…'}
          </button>
        </div>
      ) : (
        <>
          <div className="start-picture">
            <img
              src={picture.url}
              alt="The starting image"
              className={Math.max(picture.width, picture.height) < 256 ? 'viewer-pixelated' : undefined}
            />
            <button
              type="button"
              className="btn btn-icon start-remove"
              aria-label="Remove the starting image"
              title="Remove the starting image (back to text to image)"
              onClick={() => s.remove()}
            >
              ×
            </button>
            <div className="start-picture-side">
              <label htmlFor={`${uid}-strength`}>Strength</label>
              <div className="row">
                <input
                  id={`${uid}-strength`}
                  type="range"
                  min={0}
                  max={1}
                  step={0.05}
                  value={strength}
                  aria-valuetext={`${strength.toFixed(2)}`}
                  aria-describedby={`${uid}-strength-hint`}
                  onChange={(e) => s.setStrength(Number(e.target.value))}
                />
                <output htmlFor={`${uid}-strength`} data-testid="strength-value">
                  {strength.toFixed(2)}
                </output>
              </div>
              <div className="hint" id={`${uid}-strength-hint`}>
                How much to change: 0 keeps the picture, 1 redraws it from the prompt
                {strength !== DEFAULT_STRENGTH ? (
                  <>
                    {' '}
                    ·{' '}
                    <button type="button" className="btn btn-link" onClick={() => s.setStrength(DEFAULT_STRENGTH)}>
                      reset to {DEFAULT_STRENGTH}
                    </button>
                  </>
                ) : null}
                .
              </div>
              <button
                type="button"
                className={`btn ${editing ? 'btn-pressed' : ''}`}
                aria-pressed={editing}
                onClick={() => s.setEditing(!editing)}
              >
                {editing ? 'Hide mask editor' : masked ? 'Edit the mask' : 'Paint a mask'}
              </button>
              {resized && <div className="hint">{resized}</div>}
            </div>
          </div>
          {editing && <MaskEditor />}
        </>
      )}
      {error && (
        <p className="error-text" role="alert">
          {error}{' '}
          <button type="button" className="btn btn-link" onClick={() => start.setState({ error: null })}>
            Dismiss
          </button>
        </p>
      )}
      {dragging && picture && <p className="muted small">Drop to start from the new picture instead.</p>}
      {busy && picture && <p className="muted small">Reading the picture…</p>}
    </section>
  );
}

/** The Viewer's "Use as starting image" (Shift+I): Generate opens with this picture to start from. */
export function UseAsStartButton({ image }: { image: LibraryImage }) {
  const { start, gallery, app, api } = useStores();
  const use = async () => {
    let picture = image;
    // A cloud picture whose full PNG is not here yet is downloaded first (never a missing file).
    if (picture.downloaded === false) {
      try {
        picture = await api.invoke('library:download', { id: image.id });
      } catch (e) {
        app.getState().reportError(e);
        return;
      }
    }
    start.getState().use(picture);
    gallery.getState().open(null);
    app.getState().navigate('generate');
    app.getState().toast({ kind: 'info', message: 'Starting image set. Paint a mask to repaint only part of it.' });
  };
  const latest = useRef(use);
  latest.current = use;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT')) return;
      if (e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey && e.key.toLowerCase() === 'i') {
        e.preventDefault();
        void latest.current();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
    <button
      type="button"
      className="btn"
      onClick={() => void use()}
      aria-keyshortcuts="Shift+I"
      title="Use as starting image (Shift+I)"
    >
      Use as starting image
    </button>
  );
}

/** A stored picture's thumbnail by id; a name that is not a picture here (a cloud input, a deleted one) is said. */
function InputThumb({ id, label }: { id: string; label: string }) {
  const { api } = useStores();
  const [image, setImage] = useState<LibraryImage | null | 'missing'>(null);
  useEffect(() => {
    let live = true;
    api
      .invoke('library:get', { id })
      .then((i) => live && setImage(i))
      .catch(() => live && setImage('missing'));
    return () => {
      live = false;
    };
  }, [api, id]);
  return (
    <figure className="input-thumb" title={`${label}: ${id}`}>
      {image && image !== 'missing' ? (
        <img src={image.thumbUrl} alt={label} className="viewer-pixelated" />
      ) : (
        <div className="input-thumb-missing" role="img" aria-label={`${label} (not on this computer)`} />
      )}
      <figcaption className="small muted">{label}</figcaption>
    </figure>
  );
}

/** What a run started from: the starting image and mask thumbnails, the mode and the strength. */
export function StartThumbs({
  initImage,
  mask,
  strength,
}: {
  initImage?: string | undefined;
  mask?: string | undefined;
  strength?: number | undefined;
}) {
  if (!initImage) return null;
  const mode = generationModeOf({ initImage, mask });
  return (
    <div className="start-thumbs" data-testid="start-thumbs">
      <InputThumb id={initImage} label="Starting image" />
      {mask && <InputThumb id={mask} label="Mask" />}
      <span className="small muted">
        {MODE_LABEL[mode]} · strength {(strength ?? DEFAULT_STRENGTH).toFixed(2)}
      </span>
    </div>
  );
}
