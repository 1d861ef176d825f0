import { describe, expect, it } from 'vitest';
import { computeGridWindow, moveInGrid, scrollToReveal } from './windowing.ts';

const base = { width: 1000, height: 600, scrollTop: 0, itemCount: 10_000, minCellWidth: 180, gap: 8, overscanRows: 2 };

describe('computeGridWindow', () => {
  it('fits as many columns as the minimum cell width allows and stretches cells to fill the row', () => {
    const w = computeGridWindow(base);
    expect(w.columns).toBe(5); // 5*180 + 4*8 = 932 ≤ 1000; 6 would need 1120
    expect(w.cellSize).toBe(Math.floor((1000 - 4 * 8) / 5));
    expect(w.rowCount).toBe(2000);
    expect(w.totalHeight).toBe(2000 * w.rowHeight - 8);
  });

  it('renders only the visible rows plus overscan, whatever the library size', () => {
    const top = computeGridWindow(base);
    expect(top.firstRow).toBe(0);
    expect(top.lastRow).toBe(Math.ceil(600 / top.rowHeight) + 2);
    expect(top.endIndex - top.startIndex).toBeLessThanOrEqual((Math.ceil(600 / top.rowHeight) + 4) * 5);

    const mid = computeGridWindow({ ...base, scrollTop: 500 * top.rowHeight + 10 });
    expect(mid.firstRow).toBe(498);
    expect(mid.startIndex).toBe(498 * 5);
    expect(mid.endIndex - mid.startIndex).toBeLessThan(60);
  });

  it('clamps at the end and copes with empty and zero-sized containers', () => {
    const end = computeGridWindow({ ...base, itemCount: 12, scrollTop: 99_999 });
    expect(end.endIndex).toBe(12);
    expect(end.lastRow).toBe(3);
    expect(computeGridWindow({ ...base, itemCount: 0 })).toMatchObject({
      rowCount: 0,
      startIndex: 0,
      endIndex: 0,
      totalHeight: 0,
    });
    expect(computeGridWindow({ ...base, width: 0, height: 0 }).columns).toBe(1);
  });
});

describe('grid keyboard', () => {
  it('moves by cells and rows and stays inside the items', () => {
    expect(moveInGrid(0, 'ArrowRight', 5, 12)).toBe(1);
    expect(moveInGrid(0, 'ArrowLeft', 5, 12)).toBe(0);
    expect(moveInGrid(2, 'ArrowDown', 5, 12)).toBe(7);
    expect(moveInGrid(8, 'ArrowDown', 5, 12)).toBe(8); // no cell below in the last, short row
    expect(moveInGrid(7, 'ArrowUp', 5, 12)).toBe(2);
    expect(moveInGrid(3, 'End', 5, 12)).toBe(11);
    expect(moveInGrid(9, 'Home', 5, 12)).toBe(0);
    expect(moveInGrid(0, 'PageDown', 5, 100, 3)).toBe(15);
    expect(moveInGrid(-1, 'ArrowRight', 5, 0)).toBe(-1);
  });

  it('scrolls just enough to reveal the active cell', () => {
    expect(scrollToReveal(0, 5, 200, 192, 0, 600)).toBeNull();
    expect(scrollToReveal(20, 5, 200, 192, 0, 600)).toBe(4 * 200 + 192 - 600);
    expect(scrollToReveal(0, 5, 200, 192, 400, 600)).toBe(0);
  });
});
