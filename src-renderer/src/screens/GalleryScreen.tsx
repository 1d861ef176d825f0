import type { LibraryImage } from '@atelier/common';
import { useCallback, useEffect, useState, type KeyboardEvent } from 'react';
import { Modal } from '../components/Modal.tsx';
import { VirtualGrid } from '../components/VirtualGrid.tsx';
import { useS, useStores } from '../stores/index.ts';
import type { Board } from '../stores/gallery.ts';
import { Viewer } from './Viewer.tsx';
import { CloudBadge } from '../components/CloudBadge.tsx';
import { Icon } from '../components/Icon.tsx';

const cellId = (img: LibraryImage) => `cell-${img.id}`;

function BoardItem({ board, current }: { board: Board; current: boolean }) {
  const { gallery, app } = useStores();
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(board.name);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const save = async () => {
    setEditing(false);
    if (name.trim() && name.trim() !== board.name) {
      try {
        await gallery.getState().renameBoard(board.id, name.trim());
      } catch (e) {
        setName(board.name);
        app.getState().reportError(e);
      }
    }
  };
  const remove = async (images: 'keep' | 'delete') => {
    setConfirmDelete(false);
    try {
      await gallery.getState().deleteBoard(board.id, images);
      app.getState().toast({ kind: 'info', message: `Board “${board.name}” deleted.` });
    } catch (e) {
      app.getState().reportError(e);
    }
  };
  return (
    <li className={`board ${current ? 'board-current' : ''}`}>
      {editing ? (
        <input
          aria-label={`New name for board ${board.name}`}
          value={name}
          autoFocus
          onChange={(e) => setName(e.target.value)}
          onBlur={() => void save()}
          onKeyDown={(e) => {
            if (e.key === 'Enter') void save();
            if (e.key === 'Escape') {
              setName(board.name);
              setEditing(false);
            }
          }}
        />
      ) : (
        <button
          type="button"
          className="board-name"
          aria-current={current ? 'true' : undefined}
          onClick={() => gallery.getState().setFilter({ boardId: board.id, starred: false })}
        >
          {board.name} <span className="count">{board.imageCount}</span>
        </button>
      )}
      <span className="board-actions">
        <button
          type="button"
          className="btn btn-icon"
          aria-label={`Rename board ${board.name}`}
          title="Rename"
          onClick={() => setEditing(true)}
        >
          <Icon name="pencil" size={14} />
        </button>
        <button
          type="button"
          className="btn btn-icon"
          aria-label={`Delete board ${board.name}`}
          title="Delete"
          onClick={() => setConfirmDelete(true)}
        >
          <Icon name="trash" size={14} />
        </button>
      </span>
      <Modal open={confirmDelete} onClose={() => setConfirmDelete(false)} label={`Delete board ${board.name}`}>
        <div className="modal-body">
          <h2>Delete “{board.name}”?</h2>
          <p>
            It holds {board.imageCount} image{board.imageCount === 1 ? '' : 's'}. Keep them in your library, or delete
            them too?
          </p>
          <div className="row end">
            <button type="button" className="btn" onClick={() => setConfirmDelete(false)}>
              Cancel
            </button>
            <button type="button" className="btn" onClick={() => void remove('keep')}>
              Delete board, keep images
            </button>
            <button type="button" className="btn btn-danger" onClick={() => void remove('delete')}>
              Delete board and images
            </button>
          </div>
        </div>
      </Modal>
    </li>
  );
}

function Sidebar() {
  const { gallery, app } = useStores();
  const boards = useS(gallery, (s) => s.boards);
  const filter = useS(gallery, (s) => s.filter);
  const [newName, setNewName] = useState('');
  const create = async () => {
    if (!newName.trim()) return;
    try {
      await gallery.getState().createBoard(newName.trim());
      setNewName('');
    } catch (e) {
      app.getState().reportError(e);
    }
  };
  const pick = (boardId: string | null, starred: boolean) => gallery.getState().setFilter({ boardId, starred });
  return (
    <nav className="gallery-sidebar" aria-label="Boards">
      <ul className="boards">
        <li className={`board ${!filter.boardId && !filter.starred ? 'board-current' : ''}`}>
          <button
            type="button"
            className="board-name"
            aria-current={!filter.boardId && !filter.starred ? 'true' : undefined}
            onClick={() => pick(null, false)}
          >
            All images
          </button>
        </li>
        <li className={`board ${filter.starred ? 'board-current' : ''}`}>
          <button
            type="button"
            className="board-name"
            aria-current={filter.starred ? 'true' : undefined}
            onClick={() => pick(null, true)}
          >
            ★ Starred
          </button>
        </li>
        <li className={`board ${filter.boardId === 'none' ? 'board-current' : ''}`}>
          <button
            type="button"
            className="board-name"
            aria-current={filter.boardId === 'none' ? 'true' : undefined}
            onClick={() => pick('none', false)}
          >
            Not on a board
          </button>
        </li>
      </ul>
      <h2 className="sidebar-title">Boards</h2>
      <ul className="boards">
        {boards.map((b) => (
          <BoardItem key={b.id} board={b} current={filter.boardId === b.id} />
        ))}
      </ul>
      <form
        className="new-board"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <label htmlFor="new-board-name" className="sr-only">
          New board name
        </label>
        <input
          id="new-board-name"
          placeholder="New board"
          value={newName}
          maxLength={100}
          onChange={(e) => setNewName(e.target.value)}
        />
        <button type="submit" className="btn" disabled={!newName.trim()}>
          Create board
        </button>
      </form>
    </nav>
  );
}

export function GalleryScreen() {
  const { gallery, app } = useStores();
  const items = useS(gallery, (s) => s.items);
  const total = useS(gallery, (s) => s.total);
  const loading = useS(gallery, (s) => s.loading);
  const loaded = useS(gallery, (s) => s.loaded);
  const selection = useS(gallery, (s) => s.selection);
  const boards = useS(gallery, (s) => s.boards);
  const filter = useS(gallery, (s) => s.filter);
  const viewerId = useS(gallery, (s) => s.viewerId);
  // The keyboard-focused image is kept by id, not by position: images that arrive while you browse
  // (a job finishing) shift positions, and Enter must open the image that is highlighted.
  const [activeId, setActiveId] = useState<string | null>(null);
  const active = activeId === null ? -1 : items.findIndex((i) => i.id === activeId);
  const setActive = (index: number) => setActiveId(items[index]?.id ?? null);
  const [search, setSearch] = useState(filter.search);
  // Walking the viewer with ←/→ moves the grid's focus along, so closing it leaves you where you were.
  useEffect(() => {
    if (viewerId) setActiveId(viewerId);
  }, [viewerId]);

  // Search as you type, without a request per keystroke.
  useEffect(() => {
    if (search === gallery.getState().filter.search) return;
    const t = setTimeout(() => gallery.getState().setFilter({ search }), 250);
    return () => clearTimeout(t);
  }, [search, gallery]);

  const selected = [...selection.ids];
  const onEndReached = useCallback(() => void gallery.getState().loadMore(), [gallery]);

  const remove = async (ids: string[]) => {
    if (ids.length === 0) return;
    try {
      const token = await gallery.getState().remove(ids);
      app.getState().toast({
        kind: 'info',
        message: `Deleted ${ids.length} image${ids.length === 1 ? '' : 's'}.`,
        action: {
          label: 'Undo',
          run: () =>
            void gallery
              .getState()
              .undoRemove(token)
              .then((n) =>
                app.getState().toast({ kind: 'success', message: `Restored ${n} image${n === 1 ? '' : 's'}.` }),
              )
              .catch((e: unknown) => app.getState().reportError(e)),
        },
        timeoutMs: 10_000,
      });
    } catch (e) {
      app.getState().reportError(e);
    }
  };

  const onGridKey = (e: KeyboardEvent<HTMLDivElement>, index: number) => {
    const item = items[index];
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'a') {
      e.preventDefault();
      gallery.getState().selectAll();
    } else if (e.key === 'Escape') {
      gallery.getState().clearSelection();
    } else if (e.key === 'Delete' || e.key === 'Backspace') {
      e.preventDefault();
      void remove(selected.length ? selected : item ? [item.id] : []);
    } else if (e.key === 'Enter' && item) {
      // Without this the same key press goes on (keypress) to the viewer's Close button, which
      // takes focus as the viewer opens, and closes it again.
      e.preventDefault();
      gallery.getState().open(item.id);
    } else if (e.key === ' ' && item) {
      e.preventDefault();
      gallery.getState().click(item.id, { toggle: true, shift: e.shiftKey });
    } else if (e.key.toLowerCase() === 's' && item && !e.ctrlKey && !e.metaKey) {
      const ids = selected.length ? selected : [item.id];
      const allStarred = items.filter((i) => ids.includes(i.id)).every((i) => i.starred);
      void gallery.getState().setStar(ids, !allStarred);
    }
  };

  const onActive = (i: number) => {
    setActive(i);
    const item = items[i];
    if (item && !selection.ids.has(item.id)) gallery.getState().click(item.id, {});
  };

  const starredAll = selected.length > 0 && items.filter((i) => selection.ids.has(i.id)).every((i) => i.starred);
  const title = filter.starred
    ? 'Starred'
    : filter.boardId === 'none'
      ? 'Not on a board'
      : filter.boardId
        ? (boards.find((b) => b.id === filter.boardId)?.name ?? 'Board')
        : 'All images';

  return (
    <div className="gallery-layout">
      <Sidebar />
      <section className="gallery-main" aria-labelledby="gallery-title">
        <div className="gallery-toolbar">
          <h1 id="gallery-title" className="screen-title">
            {title}{' '}
            <span className="count" aria-label={`${total} images`}>
              {total}
            </span>
          </h1>
          <div className="row">
            <label htmlFor="gallery-search" className="sr-only">
              Search images
            </label>
            <input
              id="gallery-search"
              type="search"
              placeholder="Search prompts…"
              value={search}
              onChange={(e) => setSearch(e.target.value)}
            />
          </div>
        </div>
        <div className="selection-bar" aria-live="polite">
          {selected.length > 0 ? (
            <>
              <span>{selected.length} selected</span>
              <button
                type="button"
                className="btn"
                onClick={() => void gallery.getState().setStar(selected, !starredAll)}
              >
                {starredAll ? 'Unstar' : 'Star'}
              </button>
              <label className="sr-only" htmlFor="move-to-board">
                Move to board
              </label>
              <select
                id="move-to-board"
                value=""
                onChange={(e) => {
                  const v = e.target.value;
                  if (!v) return;
                  gallery
                    .getState()
                    .moveToBoard(selected, v === 'none' ? null : v)
                    .catch((err: unknown) => app.getState().reportError(err));
                }}
              >
                <option value="">Move to board…</option>
                <option value="none">No board</option>
                {boards.map((b) => (
                  <option key={b.id} value={b.id}>
                    {b.name}
                  </option>
                ))}
              </select>
              <button type="button" className="btn btn-danger" onClick={() => void remove(selected)}>
                Delete
              </button>
              <button type="button" className="btn btn-link" onClick={() => gallery.getState().clearSelection()}>
                Clear selection
              </button>
            </>
          ) : (
            <span className="muted">
              Click to select, Shift-click for a range, Ctrl/⌘+A for all. Enter opens, S stars, Delete deletes.
            </span>
          )}
        </div>
        {loaded && items.length === 0 ? (
          <div className="empty-state">
            <p>{filter.search || filter.starred || filter.boardId ? 'No images match.' : 'No images yet.'}</p>
            {!filter.search && !filter.starred && !filter.boardId && (
              <button type="button" className="btn btn-primary" onClick={() => app.getState().navigate('generate')}>
                Generate your first image
              </button>
            )}
          </div>
        ) : (
          <VirtualGrid
            items={items}
            itemKey={(i) => i.id}
            cellId={cellId}
            label="Images"
            multiselectable
            activeIndex={active}
            onActiveIndexChange={onActive}
            onEndReached={onEndReached}
            onKeyDown={onGridKey}
            renderItem={(img, index, _size, isActive) => (
              <div
                id={cellId(img)}
                role="option"
                aria-selected={selection.ids.has(img.id)}
                aria-label={`${img.metadata?.positive_prompt ?? 'Image'}${img.starred ? ', starred' : ''}`}
                className={`thumb ${selection.ids.has(img.id) ? 'thumb-selected' : ''} ${isActive ? 'thumb-active' : ''}`}
                onClick={(e) => {
                  setActive(index);
                  gallery.getState().click(img.id, { shift: e.shiftKey, toggle: e.ctrlKey || e.metaKey });
                }}
                onDoubleClick={() => gallery.getState().open(img.id)}
              >
                <img src={img.thumbUrl} alt="" loading="lazy" decoding="async" draggable={false} />
                <CloudBadge place={img.cloud} downloaded={img.downloaded} />
                {img.starred && (
                  <span className="thumb-star" aria-hidden="true">
                    ★
                  </span>
                )}
                {img.origin === 'cloud' && (
                  <span className="thumb-origin" aria-hidden="true">
                    <Icon name="cloud" size={14} />
                  </span>
                )}
              </div>
            )}
          />
        )}
        {loading && (
          <div className="muted small" role="status">
            Loading…
          </div>
        )}
      </section>
      <Modal
        open={viewerId !== null}
        onClose={() => gallery.getState().open(null)}
        label="Image viewer"
        className="viewer-modal"
      >
        {viewerId && <Viewer id={viewerId} />}
      </Modal>
    </div>
  );
}
