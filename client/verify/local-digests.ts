/**
 * The client's own saved digests, so that verifying the newest snapshot each run costs about its changes, as on the
 * server: DIR/VOLUME/UUID.digest for each local snapshot verified, and the next digest starts from the snapshot's
 * own or from the newest older snapshot's (files whose inode, size, ctime and mtime match are not read again).
 * "Older" is push's order (core/taken-order.ts), not generation: a snapshot restored here has the newest generation,
 * and by it the newest snapshot's digest started from an older one's while the restored one, closer, was passed over.
 * Only digests of snapshots that still exist here are kept.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseName, parseUuid } from '../../core/names.ts';
import type { LocalSnapshot } from '../../core/plan.ts';
import { takenOrder, type ServerTakenAt } from '../../core/taken-order.ts';
import { loadTree, saveTree, type DigestedTree } from '../../core/tree-digest/index.ts';

const SUFFIX = '.digest';

export { defaultDigestCache } from '../defaults.ts';

export class LocalDigests {
  constructor(readonly dir: string) {}

  file(volume: string, uuid: string): string {
    return path.join(this.dir, parseName(volume, 'volume'), `${parseUuid(uuid, 'snapshot uuid')}${SUFFIX}`);
  }

  /**
   * The snapshot's own saved digest, else the newest older snapshot's; `from` names which. `server`: the server's
   * listing, whose takenAt dates a snapshot that has no time here (a restore), as for push.
   */
  async previous(
    volume: string,
    snapshot: LocalSnapshot,
    others: readonly LocalSnapshot[],
    server: readonly ServerTakenAt[] = [],
  ): Promise<{ tree: DigestedTree; from: string } | null> {
    const byAge = takenOrder([snapshot, ...others], server);
    const older = others.filter((o) => o.uuid !== snapshot.uuid && byAge(o, snapshot) < 0).sort((a, b) => byAge(b, a));
    for (const candidate of [snapshot, ...older]) {
      const file = this.file(volume, candidate.uuid);
      if (!(await fs.stat(file).then(() => true, () => false))) continue;
      // A damaged or older file only costs a full read.
      const tree = await loadTree(file).catch(() => null);
      if (tree) return { tree, from: candidate === snapshot ? 'this snapshot' : candidate.name };
    }
    return null;
  }

  /**
   * Saves the digest of `snapshot`, and drops those of snapshots no longer among `present` (all of the volume's
   * snapshots here; null when only some are known, e.g. snapshots named one by one: then nothing is dropped).
   */
  async save(volume: string, snapshot: LocalSnapshot, tree: DigestedTree, present: readonly LocalSnapshot[] | null): Promise<void> {
    const file = this.file(volume, snapshot.uuid);
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await saveTree(tree, file);
    if (present === null) return;
    const keep = new Set([snapshot, ...present].map((s) => `${s.uuid}${SUFFIX}`));
    for (const name of await fs.readdir(path.dirname(file))) {
      if (name.endsWith(SUFFIX) && !keep.has(name)) await fs.rm(path.join(path.dirname(file), name), { force: true });
    }
  }
}
