/**
 * What every section of the bench works on: a client btrfs with the mixed data and its read-only snapshots, an
 * empty server btrfs to receive into, and the size of each send stream (counted once, which also brings the
 * snapshots into the page cache before anything is timed).
 *
 *   client/data      -> snaps/data/s1 (full), mutated -> snaps/data/s2 (incremental from s1)
 *   client/quarter   -> snaps/quarter/q1   a quarter of data: the small stream for peak RSS
 *   client/slow      -> snaps/slow/w1      the slow-link stream
 *   client/silent    -> snaps/silent/z1    the silent-line stream (a few MB)
 * Each source has its own snapshot folder, so that a push never takes another source's snapshot for a parent.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import * as btrfs from '../../core/btrfs/index.ts';
import { createBtrfs, snapshotReadonly, type BtrfsFixture } from '../fixtures/btrfs.ts';
import type { Cleanup } from './cleanup.ts';
import { fillMixed, mutateMixed } from './data.ts';
import { timedShell } from './measure.ts';
import type { Scale } from './options.ts';

export interface Stream {
  snapshot: string;
  parent: string | null;
  /** Bytes of its `btrfs send` stream. */
  rawBytes: number;
}

export interface World {
  client: BtrfsFixture;
  server: BtrfsFixture;
  full: Stream;
  incremental: Stream;
  quarter: Stream;
  slow: Stream;
  silent: Stream;
  /** File data written into client/data before s1 (bytes, files). */
  data: { bytes: number; files: number; seconds: number };
}

export async function buildWorld(cleanup: Cleanup, scale: Scale, say: (line: string) => void): Promise<World> {
  const client = await createBtrfs(cleanup, { sizeMiB: scale.clientImageMiB });
  const server = await createBtrfs(cleanup, { sizeMiB: scale.serverImageMiB });
  const at = (...parts: string[]): string => path.join(client.mountPoint, ...parts);
  await mkdir(at('snaps', 'data'), { recursive: true });
  await mkdir(at('snaps', 'quarter'));
  await mkdir(at('snaps', 'slow'));
  await mkdir(at('snaps', 'silent'));
  for (const name of ['data', 'quarter', 'slow', 'silent']) await btrfs.createSubvolume(at(name));

  say(`writing ${scale.dataMiB} MiB of mixed data (text, random, small files)`);
  const started = performance.now();
  const written = await fillMixed(at('data'), { seed: 'data', sizeMiB: scale.dataMiB });
  const seconds = (performance.now() - started) / 1000;
  say(`  ${written.files} files, ${(written.bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(1)} s`);
  await fillMixed(at('quarter'), { seed: 'quarter', sizeMiB: scale.quarterMiB });
  await fillMixed(at('slow'), { seed: 'slow', sizeMiB: scale.slowMiB });
  await fillMixed(at('silent'), { seed: 'silent', sizeMiB: scale.silentMiB });

  await snapshotReadonly(at('data'), at('snaps', 'data', 's1'));
  await mutateMixed(at('data'), { seed: 'day-2', sizeMiB: scale.dataMiB });
  await snapshotReadonly(at('data'), at('snaps', 'data', 's2'));
  await snapshotReadonly(at('quarter'), at('snaps', 'quarter', 'q1'));
  await snapshotReadonly(at('slow'), at('snaps', 'slow', 'w1'));
  await snapshotReadonly(at('silent'), at('snaps', 'silent', 'z1'));
  await execa('sync');

  say('counting the send streams');
  const stream = async (snapshot: string, parent: string | null = null): Promise<Stream> => {
    const counted = await timedShell(`${SEND_SCRIPT} | wc -c`, sendArgs({ snapshot, parent }));
    return { snapshot, parent, rawBytes: Number(counted.stdout.trim()) };
  };
  const s1 = at('snaps', 'data', 's1');
  return {
    client,
    server,
    full: await stream(s1),
    incremental: await stream(at('snaps', 'data', 's2'), s1),
    quarter: await stream(at('snaps', 'quarter', 'q1')),
    slow: await stream(at('snaps', 'slow', 'w1')),
    silent: await stream(at('snaps', 'silent', 'z1')),
    data: { bytes: written.bytes, files: written.files, seconds },
  };
}

/** `btrfs send` of $1, incremental from $2 unless $2 is empty, for timedShell scripts: `${SEND_SCRIPT} | ...`. */
export const SEND_SCRIPT = 'parent=(); if [ -n "$2" ]; then parent=(-p "$2"); fi; btrfs send -q "${parent[@]}" "$1"';

/** $1 and $2 of SEND_SCRIPT. */
export function sendArgs(s: { snapshot: string; parent: string | null }): [string, string] {
  return [s.snapshot, s.parent ?? ''];
}

/**
 * Lets the server filesystem settle between runs, untimed: dirty pages written out and deleted subvolumes cleaned
 * up, so that no run pays for the one before it.
 */
export async function settle(server: BtrfsFixture): Promise<void> {
  await execa('sync');
  await execa('btrfs', ['subvolume', 'sync', server.mountPoint]);
  await execa('sync');
}
