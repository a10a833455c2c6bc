/**
 * Where each received snapshot's tree digest is kept: ROOT/digests/CLIENT/VOLUME/UUID.digest (server/layout.ts),
 * beside the catalog and out of the volumes' folders (a digest is the server's own record, not part of a backup).
 * A snapshot that goes (retention, or deleted by hand) takes its digest with it: `drop` for one, `sweep` for every
 * digest whose snapshot the catalog no longer holds (at start, after anything that went behind the server's back).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { isSafeName, parseUuid, type SafeName } from '../../core/names.ts';
import type { Catalog } from '../catalog.ts';
import type { ServerLayout } from '../layout.ts';

const SUFFIX = '.digest';

export class SavedDigests {
  constructor(private readonly layout: ServerLayout) {}

  file(client: SafeName, volume: SafeName, uuid: string): string {
    return this.layout.digestFile(client, volume, parseUuid(uuid, 'snapshot uuid'));
  }

  async drop(client: SafeName, volume: SafeName, uuid: string): Promise<void> {
    await fs.rm(this.file(client, volume, uuid), { force: true });
  }

  /**
   * Deletes the digests of snapshots the catalog does not hold; returns how many. A digest is named by the client's
   * UUID, so one of a snapshot the catalog holds without it (rebuilt from the disk, server/uuid-namespace.ts) tells
   * the catalog that UUID, and stays.
   */
  async sweep(catalog: Pick<Catalog, 'allSnapshots' | 'learnUuids'>): Promise<number> {
    const named = new Map<string, string[]>();
    for (const client of await names(this.layout.digests)) {
      for (const volume of await names(path.join(this.layout.digests, client))) {
        const files = await names(path.join(this.layout.digests, client, volume));
        named.set(client, [...(named.get(client) ?? []), ...files.filter((f) => f.endsWith(SUFFIX)).map((f) => f.slice(0, -SUFFIX.length))]);
      }
    }
    for (const [client, uuids] of named) await catalog.learnUuids(client, uuids);
    const held = new Set(catalog.allSnapshots().map((s) => `${s.client}/${s.volume}/${s.uuid}${SUFFIX}`));
    let dropped = 0;
    for (const client of await names(this.layout.digests)) {
      for (const volume of await names(path.join(this.layout.digests, client))) {
        const dir = path.join(this.layout.digests, client, volume);
        for (const file of await names(dir)) {
          if (held.has(`${client}/${volume}/${file}`)) continue;
          await fs.rm(path.join(dir, file), { force: true, recursive: true });
          dropped++;
        }
      }
    }
    return dropped;
  }
}

/** The names in a folder that could be ours (a safe name); none when the folder is missing. */
async function names(dir: string): Promise<string[]> {
  const all = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [] as string[];
    throw err;
  });
  return all.filter((n) => isSafeName(n));
}
