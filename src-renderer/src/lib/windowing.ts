/**
 * The gallery's windowing math: which rows of a grid of square cells are on screen. Pure, so it
 * is tested without a DOM; the VirtualGrid component only feeds it sizes and scroll offsets.
 */
export interface GridWindowInput {
  /** Unit: CSS pixels of the scroll container's content box. */
  width: number;
  height: number;
  scrollTop: number;
  itemCount: number;
  /** Unit: CSS pixels; cells grow to fill the row but never shrink below this. */
  minCellWidth: number;
  gap: number;
  /** Rows rendered above and below the viewport so fast scrolling does not show blanks. */
  overscanRows: number;
}

export interface GridWindow {
  columns: number;
  cellSize: number;
  rowHeight: number;
  rowCount: number;
  totalHeight: number;
  firstRow: number;
  /** Exclusive. */
  lastRow: number;
  startIndex: number;
  /** Exclusive. */
  endIndex: number;
}

export function computeGridWindow(i: GridWindowInput): GridWindow {
  const width = Math.max(0, i.width);
  const columns = Math.max(1, Math.floor((width + i.gap) / (i.minCellWidth + i.gap)));
  const cellSize = Math.max(1, Math.floor((width - i.gap * (columns - 1)) / columns));
  const rowHeight = cellSize + i.gap;
  const rowCount = Math.ceil(i.itemCount / columns);
  const totalHeight = Math.max(0, rowCount * rowHeight - i.gap);
  const top = Math.max(0, i.scrollTop);
  const firstVisible = Math.floor(top / rowHeight);
  const lastVisible = Math.ceil((top + Math.max(0, i.height)) / rowHeight);
  const firstRow = Math.max(0, Math.min(rowCount, firstVisible - i.overscanRows));
  const lastRow = Math.max(firstRow, Math.min(rowCount, lastVisible + i.overscanRows));
  return {
    columns,
    cellSize,
    rowHeight,
    rowCount,
    totalHeight,
    firstRow,
    lastRow,
    startIndex: firstRow * columns,
    endIndex: Math.min(i.itemCount, lastRow * columns),
  };
}

/** The scrollTop that brings item `index` fully into view, or null when it already is. */
export function scrollToReveal(
  index: number,
  columns: number,
  rowHeight: number,
  cellSize: number,
  scrollTop: number,
  viewport: number,
): number | null {
  const row = Math.floor(index / Math.max(1, columns));
  const top = row * rowHeight;
  if (top < scrollTop) return top;
  if (top + cellSize > scrollTop + viewport) return top + cellSize - viewport;
  return null;
}

/** Arrow-key movement in a grid, clamped to the items. */
export function moveInGrid(index: number, key: string, columns: number, count: number, pageRows = 3): number {
  if (count === 0) return -1;
  const at = Math.max(0, Math.min(count - 1, index));
  switch (key) {
    case 'ArrowRight':
      return Math.min(count - 1, at + 1);
    case 'ArrowLeft':
      return Math.max(0, at - 1);
    case 'ArrowDown':
      return at + columns < count ? at + columns : at;
    case 'ArrowUp':
      return at - columns >= 0 ? at - columns : at;
    case 'PageDown':
      return Math.min(count - 1, at + columns * pageRows);
    case 'PageUp':
      return Math.max(0, at - columns * pageRows);
    case 'Home':
      return 0;
    case 'End':
      return count - 1;
    default:
      return at;
  }
}
