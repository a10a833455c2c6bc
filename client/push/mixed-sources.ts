/**
 * The refusal of a push whose snapshots are of more than one source subvolume (core/sources.ts): a volume holds one
 * source's snapshots, or its chain would hop from one subvolume to another. The message lists each source and says
 * how to push it on its own.
 */
import type { SourceGroup } from '../../core/sources.ts';
import { PushError } from './send-snapshot.ts';

const MAX_LISTED = 3;
/** Beyond this many snapshots, a command that names each one is too long to be advice. */
const MAX_PATHS = 5;

function listNames(g: SourceGroup): string {
  const names = g.snapshots.map((s) => s.name);
  const shown = names.length <= MAX_LISTED ? names.join(', ') : `${names.slice(0, MAX_LISTED - 1).join(', ')}, … ${names.at(-1)}`;
  return `${shown} (${names.length} snapshot${names.length === 1 ? '' : 's'})`;
}

function quote(arg: string): string {
  return /^[\w./@:+,=-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** How to push one group alone; null where no short command can (many snapshots under a name another source shares). */
function pushCommand(g: SourceGroup, groups: readonly SourceGroup[], given: readonly string[]): string | null {
  // btrbk's layout: `--volume NAME` picks NAME.* from the folder (client/local/snapshots.ts), which tells this source
  // from the others only when no other shares its NAME. Else that very command is the one refused.
  const nameIsItsOwn = g.label !== null && groups.filter((o) => o.label === g.label).length === 1;
  if (!nameIsItsOwn && g.snapshots.length > MAX_PATHS) return null;
  const paths = nameIsItsOwn ? given : g.snapshots.map((s) => s.path);
  return `snapferry push --volume ${g.label ?? 'VOLUME'} ${paths.map(quote).join(' ')}`;
}

/**
 * Received here under the NAME of a source of this machine: a restore into the folder push reads (a full one starts
 * a chain btrfs knows no source of). Such snapshots came from the server, so the fix is to put them elsewhere, not push them.
 */
function restoredHere(g: SourceGroup, groups: readonly SourceGroup[]): boolean {
  return g.origin === null && g.label !== null && groups.some((o) => o !== g && o.label === g.label);
}

// Not "move them out": btrfs refuses to move a read-only subvolume to another directory (EROFS).
const RESTORED_ADVICE =
  'received here (restored?) under the name of this machine\'s own snapshots: restore into another folder than the ' +
  'one push reads (snapferry restore ... DEST_DIR), or delete these here (btrfs subvolume delete) if the server still ' +
  'holds them, and push the folder again';

/** `given`: the paths the user gave push, repeated in the advice for a source whose names share a prefix. */
export function mixedSourcesError(groups: readonly SourceGroup[], given: readonly string[]): PushError {
  const lines = groups.map((g, i) => {
    const what = g.label ?? `source ${i + 1}`;
    const origin = g.origin ? `subvolume ${g.origin}` : 'received snapshots, source unknown';
    const command = pushCommand(g, groups, given);
    const how = restoredHere(g, groups)
      ? RESTORED_ADVICE
      : `push it with: ${command ?? `name its snapshots one by one: snapferry push --volume ${g.label ?? 'VOLUME'} PATH...`}`;
    return `  ${what} (${origin}): ${listNames(g)}\n    ${how}`;
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
