import { useCallback, useEffect, useLayoutEffect, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { computeGridWindow, moveInGrid, scrollToReveal } from '../lib/windowing.ts';

export interface VirtualGridProps<T> {
  items: readonly T[];
  itemKey: (item: T) => string;
  renderItem: (item: T, index: number, cellSize: number, active: boolean) => ReactNode;
  /** Accessible name of the grid. */
  label: string;
  minCellWidth?: number;
  gap?: number;
  /** Index of the keyboard-focused cell (aria-activedescendant). */
  activeIndex: number;
  onActiveIndexChange: (index: number) => void;
  /** Called when the user scrolls near the end: load the next page. */
  onEndReached?: () => void;
  onKeyDown?: (e: KeyboardEvent<HTMLDivElement>, index: number) => void;
  cellId: (item: T) => string;
  multiselectable?: boolean;
}

/**
 * A windowed grid of square cells: only the rows on screen (plus a little overscan) are in the
 * DOM, so 10,000 images scroll like 100. A listbox for assistive technology; arrow keys, Home/End
 * and Page Up/Down move the active cell and scroll it into view.
 */
export function VirtualGrid<T>(props: VirtualGridProps<T>) {
  const { items, minCellWidth = 180, gap = 8, activeIndex, onActiveIndexChange, onEndReached } = props;
  const ref = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ width: 0, height: 0 });
  const [scrollTop, setScrollTop] = useState(0);
  const pointerFocus = useRef(false);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => setSize({ width: el.clientWidth, height: el.clientHeight });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const win = computeGridWindow({
    width: size.width,
    height: size.height,
    scrollTop,
    itemCount: items.length,
    minCellWidth,
    gap,
    overscanRows: 2,
  });

  // Near the end (within two screens) ask for more; also when the first page does not fill the view.
  useEffect(() => {
    if (!onEndReached || items.length === 0) return;
    if (win.lastRow >= win.rowCount - Math.ceil((size.height * 2) / Math.max(1, win.rowHeight))) onEndReached();
  }, [win.lastRow, win.rowCount, win.rowHeight, size.height, items.length, onEndReached]);

  const reveal = useCallback(
    (index: number) => {
      const el = ref.current;
      if (!el) return;
      const top = scrollToReveal(index, win.columns, win.rowHeight, win.cellSize, el.scrollTop, el.clientHeight);
      if (top !== null) el.scrollTop = top;
    },
    [win.columns, win.rowHeight, win.cellSize],
  );

  useEffect(() => {
    if (activeIndex >= 0) reveal(activeIndex);
  }, [activeIndex, reveal]);

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const pageRows = Math.max(1, Math.floor(size.height / Math.max(1, win.rowHeight)));
    const moved = moveInGrid(activeIndex, e.key, win.columns, items.length, pageRows);
    if (
      moved !== activeIndex &&
      ['ArrowRight', 'ArrowLeft', 'ArrowDown', 'ArrowUp', 'PageDown', 'PageUp', 'Home', 'End'].includes(e.key)
    ) {
      e.preventDefault();
      onActiveIndexChange(moved);
      return;
    }
    if (e.key.startsWith('Arrow') || e.key.startsWith('Page')) e.preventDefault();
    props.onKeyDown?.(e, activeIndex);
  };

  const rows: ReactNode[] = [];
  for (let r = win.firstRow; r < win.lastRow; r++) {
    const cells: ReactNode[] = [];
    for (let c = 0; c < win.columns; c++) {
      const index = r * win.columns + c;
      const item = items[index];
      if (item === undefined) break;
      cells.push(
        <div key={props.itemKey(item)} style={{ width: win.cellSize, height: win.cellSize }} className="vgrid-cell">
          {props.renderItem(item, index, win.cellSize, index === activeIndex)}
        </div>,
      );
    }
    rows.push(
      <div
        key={r}
        role="presentation"
        className="vgrid-row"
        style={{ transform: `translateY(${r * win.rowHeight}px)`, gap, height: win.cellSize }}
      >
        {cells}
      </div>,
    );
  }
  const active = items[activeIndex];

  return (
    <div
      ref={ref}
      className="vgrid"
      role="listbox"
      aria-label={props.label}
      aria-multiselectable={props.multiselectable ?? false}
      aria-activedescendant={active !== undefined ? props.cellId(active) : undefined}
      tabIndex={0}
      onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
      onKeyDown={onKeyDown}
      onMouseDown={() => {
        pointerFocus.current = true;
      }}
      onMouseUp={() => {
        pointerFocus.current = false;
      }}
      onFocus={() => {
        // Tabbing in makes the first cell on screen active; a click picks its own cell instead,
        // and must not scroll the grid under the pointer.
        if (!pointerFocus.current && activeIndex < 0 && items.length > 0)
          onActiveIndexChange(
            Math.min(items.length - 1, Math.ceil(scrollTop / Math.max(1, win.rowHeight)) * win.columns),
          );
      }}
      data-rendered-cells={win.endIndex - win.startIndex}
    >
      <div className="vgrid-spacer" style={{ height: win.totalHeight }}>
        {rows}
      </div>
    </div>
  );
}
