import { describe, expect, it } from 'vitest';
import { emptySelection, pruneSelection, select, selectAll } from './selection.ts';

const order = ['a', 'b', 'c', 'd', 'e'];
const ids = (s: { ids: ReadonlySet<string> }) => [...s.ids].sort();

describe('gallery selection', () => {
  it('click selects one, ctrl-click toggles, shift-click selects the range from the anchor', () => {
    let s = select(emptySelection, order, 'b', {});
    expect(ids(s)).toEqual(['b']);
    s = select(s, order, 'd', { shift: true });
    expect(ids(s)).toEqual(['b', 'c', 'd']);
    s = select(s, order, 'a', { shift: true });
    expect(ids(s)).toEqual(['a', 'b']); // range re-anchored at b, replaces the previous range
    s = select(s, order, 'e', { toggle: true });
    expect(ids(s)).toEqual(['a', 'b', 'e']);
    s = select(s, order, 'a', { toggle: true });
    expect(ids(s)).toEqual(['b', 'e']);
    expect(s.anchor).toBe('a');
  });

  it('ctrl+shift extends the selection instead of replacing it', () => {
    let s = select(emptySelection, order, 'a', {});
    s = select(s, order, 'e', { toggle: true });
    s = select(s, order, 'c', { shift: true, toggle: true });
    expect(ids(s)).toEqual(['a', 'c', 'd', 'e']);
  });

  it('select all, and pruning drops ids that disappeared', () => {
    const all = selectAll(order);
    expect(all.ids.size).toBe(5);
    const pruned = pruneSelection(all, ['a', 'c']);
    expect(ids(pruned)).toEqual(['a', 'c']);
    expect(pruned.anchor).toBe('a');
    expect(pruneSelection(pruned, ['a', 'c'])).toBe(pruned);
  });
});
