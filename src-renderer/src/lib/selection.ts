/**
 * Multi-select as in a file manager: click selects one, Ctrl/Cmd-click toggles, Shift-click
 * selects the range from the anchor. Pure over an ordered list of ids.
 */
export interface Selection {
  ids: ReadonlySet<string>;
  /** The id shift-click ranges start from. */
  anchor: string | null;
}

export const emptySelection: Selection = { ids: new Set(), anchor: null };

export function select(
  sel: Selection,
  order: readonly string[],
  id: string,
  mods: { shift?: boolean; toggle?: boolean },
): Selection {
  if (mods.shift && sel.anchor !== null) {
    const a = order.indexOf(sel.anchor);
    const b = order.indexOf(id);
    if (a >= 0 && b >= 0) {
      const [lo, hi] = a < b ? [a, b] : [b, a];
      const range = order.slice(lo, hi + 1);
      const ids = mods.toggle ? new Set([...sel.ids, ...range]) : new Set(range);
      return { ids, anchor: sel.anchor };
    }
  }
  if (mods.toggle) {
    const ids = new Set(sel.ids);
    if (ids.has(id)) ids.delete(id);
    else ids.add(id);
    return { ids, anchor: id };
  }
  return { ids: new Set([id]), anchor: id };
}

export function selectAll(order: readonly string[]): Selection {
  return { ids: new Set(order), anchor: order[0] ?? null };
}

/** Drops ids that are no longer listed (deleted, filtered out). */
export function pruneSelection(sel: Selection, order: readonly string[]): Selection {
  const present = new Set(order);
  const ids = new Set([...sel.ids].filter((id) => present.has(id)));
  if (ids.size === sel.ids.size) return sel;
  return { ids, anchor: sel.anchor && present.has(sel.anchor) ? sel.anchor : null };
}
