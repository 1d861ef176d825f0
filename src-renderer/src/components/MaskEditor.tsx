import { useEffect, useRef, type PointerEvent } from 'react';
import { maxBrushSize } from '../lib/mask.ts';
import { useS, useStores } from '../stores/index.ts';

/** Repainted pixels on screen: the accent red at ~45 % over the picture. */
const OVERLAY: [number, number, number, number] = [230, 40, 60, 115];

const typing = (t: EventTarget | null) => {
  const el = t as HTMLElement | null;
  return (
    !!el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable)
  );
};

/**
 * Paints the inpainting mask over the starting image: a canvas at the picture's own resolution,
 * scaled to fit, drawn as a semi-transparent overlay. Keys (while the Generate screen shows it and
 * no text field has focus): B brush, E eraser, [ ] size, X invert, Ctrl+Z undo, Ctrl+Shift+Z /
 * Ctrl+Y redo, Delete clears.
 */
export function MaskEditor() {
  const { start } = useStores();
  const picture = useS(start, (s) => s.picture);
  const rev = useS(start, (s) => s.rev);
  const tool = useS(start, (s) => s.tool);
  const brushSize = useS(start, (s) => s.brushSize);
  const mask = useS(start, (s) => s.mask);
  const canvas = useRef<HTMLCanvasElement>(null);

  // Redraw the overlay whenever the pixels change.
  useEffect(() => {
    const c = canvas.current;
    if (!c || !mask) return;
    const g = c.getContext('2d');
    if (!g) return;
    g.putImageData(new ImageData(mask.overlay(OVERLAY), mask.width, mask.height), 0, 0);
  }, [mask, rev]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (typing(e.target)) return;
      const s = start.getState();
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      let handled = true;
      if (mod && key === 'z' && e.shiftKey) s.redo();
      else if (mod && key === 'z') s.undo();
      else if (mod && key === 'y') s.redo();
      else if (mod || e.altKey) handled = false;
      else if (key === 'b') s.setTool('brush');
      else if (key === 'e') s.setTool('eraser');
      else if (key === 'x') s.invert();
      else if (e.key === '[') s.stepBrush(-1);
      else if (e.key === ']') s.stepBrush(1);
      else if (e.key === 'Delete') s.clear();
      else handled = false;
      if (handled) e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [start]);

  if (!picture || !mask) return null;
  const at = (e: PointerEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    return {
      x: ((e.clientX - r.left) / r.width) * picture.width,
      y: ((e.clientY - r.top) / r.height) * picture.height,
    };
  };
  const s = start.getState();
  const max = maxBrushSize(picture.width, picture.height);
  const painted = mask.painted();
  const share = Math.round((painted / (picture.width * picture.height)) * 100);
  return (
    <div className="mask-editor" role="group" aria-label="Mask editor" data-rev={rev}>
      <div className="mask-tools" role="toolbar" aria-label="Mask tools">
        <div className="segmented" role="radiogroup" aria-label="Mask tool">
          {(['brush', 'eraser'] as const).map((t) => (
            <label key={t} className={`segment ${tool === t ? 'segment-on' : ''}`}>
              <input
                type="radio"
                name="mask-tool"
                value={t}
                checked={tool === t}
                onChange={() => s.setTool(t)}
                aria-keyshortcuts={t === 'brush' ? 'B' : 'E'}
              />
              {t === 'brush' ? 'Brush (B)' : 'Eraser (E)'}
            </label>
          ))}
        </div>
        <label className="mask-size">
          <span>Brush size</span>
          <input
            type="range"
            min={1}
            max={max}
            value={brushSize}
            aria-keyshortcuts="[ ]"
            onChange={(e) => s.setBrushSize(Number(e.target.value))}
          />
          <output>{brushSize}px</output>
        </label>
        <button
          type="button"
          className="btn"
          onClick={() => s.undo()}
          disabled={!mask.canUndo}
          aria-keyshortcuts="Control+Z"
          title="Undo (Ctrl+Z)"
        >
          Undo
        </button>
        <button
          type="button"
          className="btn"
          onClick={() => s.redo()}
          disabled={!mask.canRedo}
          aria-keyshortcuts="Control+Shift+Z Control+Y"
          title="Redo (Ctrl+Shift+Z)"
        >
          Redo
        </button>
        <button type="button" className="btn" onClick={() => s.invert()} aria-keyshortcuts="X" title="Invert (X)">
          Invert
        </button>
        <button
          type="button"
          className="btn"
          onClick={() => s.clear()}
          disabled={painted === 0}
          aria-keyshortcuts="Delete"
          title="Clear (Delete)"
        >
          Clear
        </button>
      </div>
      <div className="mask-stage" style={{ aspectRatio: `${picture.width} / ${picture.height}` }}>
        <img
          src={picture.url}
          alt="Starting image"
          className={Math.max(picture.width, picture.height) < 256 ? 'viewer-pixelated' : undefined}
          draggable={false}
        />
        <canvas
          ref={canvas}
          width={picture.width}
          height={picture.height}
          className={`mask-canvas mask-canvas-${tool}`}
          aria-label="Mask: paint the region to repaint"
          role="img"
          onPointerDown={(e) => {
            if (e.button !== 0) return;
            e.currentTarget.setPointerCapture(e.pointerId);
            s.strokeBegin(at(e));
          }}
          onPointerMove={(e) => {
            if (e.buttons & 1) s.strokeMove(at(e));
          }}
          onPointerUp={() => s.strokeEnd()}
          onPointerCancel={() => s.strokeEnd()}
        />
      </div>
      <p className="muted small" aria-live="polite" data-testid="mask-summary">
        {painted === 0
          ? 'Paint over the part to repaint. Nothing painted: the whole picture is reworked (image to image).'
          : `Repaints ${share < 1 ? 'under 1' : share}% of the picture; the rest is kept pixel for pixel.`}{' '}
        B brush · E eraser · [ ] size · X invert · Ctrl+Z undo
      </p>
    </div>
  );
}
