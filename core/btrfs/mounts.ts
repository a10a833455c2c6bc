/**
 * Which mount a path lives on, from /proc/self/mountinfo: btrfs prints subvolume paths from the filesystem's top
 * level, and only the mount's root (the `subvol=` it shows) says where that top level is in our directory tree.
 */
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';

export interface MountEntry {
  /** Where it is mounted, absolute. */
  mountPoint: string;
  /** The directory of the filesystem that is mounted there ('/' for its top level, '/@home' for subvol=@home). */
  root: string;
  fsType: string;
  source: string;
}

/** Parses proc(5) mountinfo: "36 35 98:0 /root /mnt rw,noatime master:1 - btrfs /dev/sda1 rw,subvol=/root". */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const before = line.slice(0, dash).split(' ');
    const after = line.slice(dash + 3).split(' ');
    const [root, mountPoint] = [before[3], before[4]];
    const [fsType, source] = [after[0], after[1]];
    if (root === undefined || mountPoint === undefined || fsType === undefined) continue;
    entries.push({
      mountPoint: unescapeOctal(mountPoint),
      root: unescapeOctal(root),
      fsType,
      source: unescapeOctal(source ?? ''),
    });
  }
  return entries;
}

/** The mount that holds `absolutePath`: the longest mount point that is a prefix of it (the last one on ties). */
export function mountOf(entries: readonly MountEntry[], absolutePath: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const entry of entries) {
    const inside =
      entry.mountPoint === '/' ||
      absolutePath === entry.mountPoint ||
      absolutePath.startsWith(entry.mountPoint + '/');
    if (inside && (best === null || entry.mountPoint.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}

/** The mount holding `p` on this machine, after resolving symlinks. */
export async function findMount(p: string): Promise<MountEntry | null> {
  const [resolved, text] = await Promise.all([realpath(p), readFile('/proc/self/mountinfo', 'utf8')]);
  return mountOf(parseMountinfo(text), path.resolve(resolved));
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes (\040 ...). */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
