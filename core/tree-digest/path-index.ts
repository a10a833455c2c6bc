/**
 * Finds entries of an EntryTable by path. Small directories are scanned; a large one gets a name -> index map the
 * first time it is searched, so that many lookups in one huge directory stay linear in total.
 */
import { NO_ENTRY } from './entry-table.ts';
import type { EntryTable } from './entry-table.ts';
import type { TreePath } from './types.ts';

const SCAN_LIMIT = 32;

export class PathIndex {
  readonly #table: EntryTable;
  readonly #byName = new Map<number, Map<string, number>>();

  constructor(table: EntryTable) {
    this.#table = table;
  }

  /** The index of a path ('' is the top), or NO_ENTRY. */
  indexOf(p: TreePath): number {
    if (p === '') return 0;
    let at = 0;
    for (const name of p.split('/')) {
      if (this.#table.kindOf(at) !== 'dir') return NO_ENTRY;
      at = this.#child(at, name);
      if (at === NO_ENTRY) return NO_ENTRY;
    }
    return at;
  }

  #child(dir: number, name: string): number {
    const t = this.#table;
    let map = this.#byName.get(dir);
    if (map === undefined) {
      let n = 0;
      for (const c of t.childrenOf(dir)) {
        if (t.names[c] === name) return c;
        n++;
      }
      if (n <= SCAN_LIMIT) return NO_ENTRY;
      map = new Map();
      for (const c of t.childrenOf(dir)) map.set(t.names[c] as string, c);
      this.#byName.set(dir, map);
    }
    return map.get(name) ?? NO_ENTRY;
  }
}
