import type { LibraryImage } from '@atelier/common';
import { useEffect, useState } from 'react';
import { userMessageOf } from '../lib/field-errors.ts';
import { formatDateTime } from '../lib/format.ts';
import { useS, useStores } from '../stores/index.ts';
import { SCHEDULER_LABELS } from './GenerateScreen.tsx';
import { StartThumbs, UseAsStartButton } from '../components/StartImage.tsx';

/** The full PNG of an image synced down with its thumbnail only, while the Viewer fetches it. */
export type FullDownload =
  | { id: string; state: 'downloading'; receivedBytes?: number; totalBytes?: number | null }
  | { id: string; state: 'failed'; message: string };

/**
 * What the Viewer's picture area shows (issue 13): the full image when it is here; otherwise its
 * thumbnail with "Downloading full image…", or the reason it failed with Retry.
 */
export function viewerPicture(
  img: Pick<LibraryImage, 'id' | 'url' | 'thumbUrl' | 'downloaded'>,
  download: FullDownload | null,
): { src: string; downloading: boolean; error: string | null; percent: number | null } {
  if (img.downloaded !== false) return { src: img.url, downloading: false, error: null, percent: null };
  const mine = download?.id === img.id ? download : null;
  if (mine?.state === 'failed') return { src: img.thumbUrl, downloading: false, error: mine.message, percent: null };
  // How much has arrived, once the first bytes say how many there are.
  const percent =
    mine?.receivedBytes !== undefined && mine.totalBytes
      ? Math.min(100, Math.floor((100 * mine.receivedBytes) / mine.totalBytes))
      : null;
  return { src: img.thumbUrl, downloading: true, error: null, percent };
}

/** The open image: full size, its generation metadata and what to do with it. ←/→ walk the gallery, Esc closes. */
export function Viewer({ id }: { id: string }) {
  const { gallery, generate, app, api, settings } = useStores();
  const models = useS(settings, (s) => s.models);
  const listed = useS(gallery, (s) => s.items.find((i) => i.id === id));
  const boards = useS(gallery, (s) => s.boards);
  const index = useS(gallery, (s) => s.items.findIndex((i) => i.id === id));
  const count = useS(gallery, (s) => s.items.length);
  const [fetched, setFetched] = useState<LibraryImage | null>(null);
  /** The image as it is once its full PNG arrived (the gallery's copy catches up on library:changed). */
  const [arrived, setArrived] = useState<LibraryImage | null>(null);
  const [download, setDownload] = useState<FullDownload | null>(null);
  const [attempt, setAttempt] = useState(0);
  const known = listed ?? fetched;
  const img = arrived?.id === id ? arrived : known;
  const pending = img?.downloaded === false;

  // Opening an image that is still in the cloud fetches it at once, ahead of the background queue.
  useEffect(() => {
    if (!pending) return;
    let live = true;
    setDownload({ id, state: 'downloading' });
    api
      .invoke('library:download', { id })
      .then((i) => {
        if (!live) return;
        setArrived(i);
        setDownload(null);
      })
      .catch((e: unknown) => live && setDownload({ id, state: 'failed', message: userMessageOf(e) }));
    const stop = api.on('library:downloadProgressed', (p) => {
      if (!live || p.id !== id) return;
      setDownload({ id, state: 'downloading', receivedBytes: p.receivedBytes, totalBytes: p.totalBytes });
    });
    return () => {
      live = false;
      stop();
    };
  }, [id, pending, attempt, api]);

  useEffect(() => {
    if (listed) return;
    let live = true;
    api
      .invoke('library:get', { id })
      .then((i) => live && setFetched(i))
      .catch((e: unknown) => {
        app.getState().reportError(e);
        gallery.getState().open(null);
      });
    return () => {
      live = false;
    };
  }, [id, listed, api, app, gallery]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t && (t.tagName === 'SELECT' || t.tagName === 'INPUT' || t.tagName === 'TEXTAREA')) return;
      if (e.key === 'ArrowLeft') {
        e.preventDefault();
        gallery.getState().step(-1);
      } else if (e.key === 'ArrowRight') {
        e.preventDefault();
        gallery.getState().step(1);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [gallery]);

  if (!img)
    return (
      <div className="viewer-loading" role="status">
        Loading image…
      </div>
    );
  const m = img.metadata;
  const picture = viewerPicture(img, download);

  const copySeed = async () => {
    if (!m) return;
    try {
      await navigator.clipboard.writeText(String(m.seed));
      app.getState().toast({ kind: 'success', message: `Seed ${m.seed} copied.` });
    } catch {
      app.getState().toast({ kind: 'error', message: `Could not reach the clipboard. The seed is ${m.seed}.` });
    }
  };
  const reveal = async () => {
    try {
      const { path } = await api.invoke('library:reveal', { id: img.id });
      app.getState().toast({ kind: 'info', message: `File: ${path}` });
    } catch (e) {
      app.getState().reportError(e);
    }
  };
  const reuse = () => {
    if (!m) return;
    generate.getState().reuse(m);
    gallery.getState().open(null);
    app.getState().navigate('generate');
    app.getState().toast({ kind: 'info', message: 'Settings copied to Generate, seed locked.' });
  };
  const rows: [string, string][] = m
    ? [
        ['Prompt', m.positive_prompt],
        ['Avoid (negative prompt)', m.negative_prompt || '—'],
        ['Seed', String(m.seed)],
        ['Size', `${m.width} × ${m.height}`],
        ['Steps', String(m.steps)],
        ['Guidance', String(m.cfg_scale)],
        ['Scheduler', SCHEDULER_LABELS[m.scheduler as keyof typeof SCHEDULER_LABELS] ?? m.scheduler],
        [
          'Model',
          models.some((x) => x.fixture && (x.id === m.model.name || x.name === m.model.name))
            ? `${m.model.name} (test fixture, draws noise)`
            : m.model.name,
        ],
        [
          'Ran on',
          `${img.origin === 'cloud' ? 'Atelier Cloud' : img.origin === 'imported' ? 'Imported' : 'This computer'}${m.execution_provider ? ` (${m.execution_provider})` : ''}`,
        ],
        ['Created', formatDateTime(img.createdAt)],
        ['App version', m.app_version],
      ]
    : [['Created', formatDateTime(img.createdAt)]];

  return (
    <div className="viewer">
      <div className="viewer-image">
        <img
          src={picture.src}
          alt={m?.positive_prompt ?? 'Image'}
          width={img.width}
          height={img.height}
          className={Math.max(img.width, img.height) < 256 ? 'viewer-pixelated' : undefined}
        />
        {picture.downloading && (
          <div className="viewer-download" role="status">
            Downloading full image…
            {picture.percent !== null && (
              <>
                {` ${picture.percent}%`}
                <progress max={100} value={picture.percent} aria-label="Full image downloaded" />
              </>
            )}
          </div>
        )}
        {picture.error && (
          <div className="viewer-download viewer-download-error" role="alert">
            <span>{picture.error}</span>
            <button type="button" className="btn" onClick={() => setAttempt((n) => n + 1)}>
              Retry
            </button>
          </div>
        )}
        <button
          type="button"
          className="btn btn-icon viewer-prev"
          aria-label="Previous image"
          disabled={index <= 0}
          onClick={() => gallery.getState().step(-1)}
        >
          ‹
        </button>
        <button
          type="button"
          className="btn btn-icon viewer-next"
          aria-label="Next image"
          disabled={index < 0 || index >= count - 1}
          onClick={() => gallery.getState().step(1)}
        >
          ›
        </button>
      </div>
      <aside className="viewer-side" aria-label="Image details">
        <div className="row space">
          <h2>Details</h2>
          <button
            type="button"
            className="btn btn-icon"
            aria-label="Close viewer"
            onClick={() => gallery.getState().open(null)}
            data-autofocus
          >
            ×
          </button>
        </div>
        {!m && <p className="muted">This image carries no generation metadata.</p>}
        <table className="metadata">
          <caption className="sr-only">Generation metadata</caption>
          <tbody>
            {rows.map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {m && <StartThumbs initImage={m.init_image} mask={m.init_mask} strength={m.strength} />}
        <div className="viewer-actions">
          <button type="button" className="btn btn-primary" disabled={!m} onClick={reuse}>
            Reuse settings
          </button>
          <UseAsStartButton image={img} />
          <button type="button" className="btn" disabled={!m} onClick={() => void copySeed()}>
            Copy seed
          </button>
          <button
            type="button"
            className="btn"
            aria-pressed={img.starred}
            onClick={() => {
              void gallery.getState().setStar([img.id], !img.starred);
              if (!listed) setFetched({ ...img, starred: !img.starred });
            }}
          >
            {img.starred ? '★ Starred' : '☆ Star'}
          </button>
          <button type="button" className="btn" onClick={() => void reveal()}>
            Reveal file
          </button>
          <label htmlFor="viewer-board">Board</label>
          <select
            id="viewer-board"
            value={img.boardId ?? ''}
            onChange={(e) =>
              void gallery
                .getState()
                .moveToBoard([img.id], e.target.value || null)
                .catch((err: unknown) => app.getState().reportError(err))
            }
          >
            <option value="">No board</option>
            {boards.map((b) => (
              <option key={b.id} value={b.id}>
                {b.name}
              </option>
            ))}
          </select>
        </div>
        <p className="muted small">← → to move between images · Esc to close</p>
      </aside>
    </div>
  );
}
