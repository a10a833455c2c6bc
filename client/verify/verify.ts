/**
 * `snapferry verify`: for each volume, the local snapshots to check (named, or the newest the server also holds),
 * each checked against the server's copy (client/verify/check.ts). Every snapshot is checked and shown; then a
 * difference anywhere is a VerifyDifferences error (its own exit code, client/exit-codes.ts).
 */
import { withClientUuids } from '../../core/uuid-namespace.ts';
import path from 'node:path';
import { parseName } from '../../core/names.ts';
import type { LocalSnapshot } from '../../core/plan.ts';
import { ServerApi } from '../http/api.ts';
import { resolveRequested } from '../local/snapshots.ts';
import { createTransport } from '../http/transport.ts';
import { checkSnapshot, lineMeter, VerifyDifferences, type VerifyOutcome } from './check.ts';
import { chooseTargets } from './targets.ts';
import { LocalDigests } from './local-digests.ts';
import type { DigestedTree } from '../../core/tree-digest/index.ts';
import type { VerifyView } from './view.ts';

export interface VerifyJobSpec {
  volume: string;
  /** Read-only snapshots, or folders holding them (the config's snapshotDir). */
  snapshots: readonly string[];
}

export interface VerifyOptions {
  server: string;
  volumes: readonly VerifyJobSpec[];
  readData?: boolean;
  headers?: Record<string, string>;
  /** With an admin token: whose snapshots. */
  client?: string;
  /** Older snapshots to check besides the newest, chosen by `rotation` (`run`'s verify: { sample }). */
  sample?: number;
  rotation?: number;
  caFile?: string;
  env?: Record<string, string | undefined>;
  stallMs?: number;
  signal?: AbortSignal;
  /** Where this machine keeps its digests to start the next from (client/verify/local-digests.ts); null: none. */
  digestCache?: string | null;
}

export async function verify(options: VerifyOptions, view: VerifyView): Promise<VerifyOutcome[]> {
  const transport = createTransport(options.server, {
    ...(options.caFile !== undefined ? { caFile: options.caFile } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  const { count, meter } = lineMeter();
  const api = new ServerApi({
    server: options.server, transport, meter, headers: options.headers ?? {},
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.stallMs ? { stallMs: options.stallMs } : {}),
  });
  const outcomes: VerifyOutcome[] = [];
  const cache = options.digestCache === null || options.digestCache === undefined ? null : new LocalDigests(options.digestCache);
  try {
    for (const spec of options.volumes) {
      const volume = parseName(spec.volume, 'volume');
      const { named, found } = await localSnapshots(spec.snapshots);
      const list = await api.snapshots(volume);
      // A snapshot the server lost the UUID of is known here by its namespaced one (core/uuid-namespace.ts).
      const listed = { ...list, snapshots: withClientUuids(list.snapshots, list.client, [...named, ...found].map((s) => s.uuid)) };
      const targets = chooseTargets({ named, found, server: listed.snapshots, volume, ...(options.sample ? { sample: options.sample } : {}), ...(options.rotation !== undefined ? { rotation: options.rotation } : {}) });
      const here = [...named, ...found];
      for (const target of targets) {
        const reuse = cache === null || options.readData ? null : await cache.previous(volume, target.local, here, listed.snapshots);
        const outcome = await checkSnapshot(
          {
            api, line: count, volume, snapshot: target.server.name, path: target.local.path, readData: options.readData ?? false, reuse,
            ...(cache ? { onLocalDigest: (tree: DigestedTree) => cache.save(volume, target.local, tree, found.length > 0 ? here : null) } : {}),
            ...(options.client !== undefined ? { client: options.client } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
          },
          view,
        );
        view.outcome(outcome);
        outcomes.push(outcome);
      }
    }
  } finally {
    view.close();
    await transport.close();
  }
  const differing = outcomes.filter((o) => !o.equal);
  if (differing.length > 0) {
    throw new VerifyDifferences(`the server's copy differs in ${differing.map((o) => o.snapshot).join(', ')} (listed above)`, {
      snapshots: differing.map((o) => o.snapshot),
    });
  }
  return outcomes;
}

/** Snapshots named one by one, and those found in folders (of which the newest the server holds is checked). */
async function localSnapshots(args: readonly string[]): Promise<{ named: LocalSnapshot[]; found: LocalSnapshot[] }> {
  const named: LocalSnapshot[] = [];
  const found: LocalSnapshot[] = [];
  for (const arg of args) {
    const got = await resolveRequested([arg]);
    if (got.length === 1 && got[0]!.path === path.resolve(arg)) named.push(got[0]!);
    else found.push(...got);
  }
  return { named, found };
}
