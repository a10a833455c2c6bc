/**
 * The refusal of a push whose snapshots are of more than one source subvolume (core/sources.ts): a volume holds one
 * source's snapshots, or its chain would hop from one subvolume to another. The message lists each source and says
 * how to push it on its own.
 */
import type { SourceGroup } from '../../core/sources.ts';
import { PushError } from './send-snapshot.ts';

const MAX_LISTED = 3;

function listNames(g: SourceGroup): string {
  const names = g.snapshots.map((s) => s.name);
  const shown = names.length <= MAX_LISTED ? names.join(', ') : `${names.slice(0, MAX_LISTED - 1).join(', ')}, … ${names.at(-1)}`;
  return `${shown} (${names.length} snapshot${names.length === 1 ? '' : 's'})`;
}

function quote(arg: string): string {
  return /^[\w./@:+,=-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** `given`: the paths the user gave push, repeated in the advice for a source whose names share a prefix. */
export function mixedSourcesError(groups: readonly SourceGroup[], given: readonly string[]): PushError {
  const lines = groups.map((g, i) => {
    const what = g.label ?? `source ${i + 1}`;
    const origin = g.origin ? `subvolume ${g.origin}` : 'received snapshots, source unknown';
    // btrbk's layout: `--volume NAME` picks NAME.* from the folder (client/local/snapshots.ts).
    const paths = g.label ? given : g.snapshots.map((s) => s.path);
    const command = `snapferry push --volume ${g.label ?? 'VOLUME'} ${paths.map(quote).join(' ')}`;
    return `  ${what} (${origin}): ${listNames(g)}\n    push it with: ${command}`;
  });
  return new PushError(
    'mixed_sources',
    `the snapshots given are of ${groups.length} different subvolumes, and a volume holds the snapshots of one ` +
      `(else its chain would go from one to another):\n${lines.join('\n')}\n` +
      'push each into a volume of its own as shown, or give each source a volume in the client config ' +
      '(volumes: NAME: source, snapshotDir) and let `snapferry run` push them',
    { details: { groups: groups.map((g) => ({ label: g.label, origin: g.origin, snapshots: g.snapshots.map((s) => s.name) })) } },
  );
}
