/**
 * Received snapshots are faithful copies: they may hold device nodes and setuid/setgid files (a backup of / does).
 * On the server those must be inert, which is what a `nosuid,nodev` mount gives: the kernel then ignores device
 * nodes, setuid/setgid bits and file capabilities on that filesystem. This reads the mount options of the volumes
 * directory so the server can say at start whether they are inert, and refuse or warn (see ServiceOptions).
 */
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { SnapferryError } from '../core/errors.ts';
import type { Logger } from './log.ts';

export interface MountSafety {
  mountPoint: string;
  nosuid: boolean;
  nodev: boolean;
}

/** The mount holding a folder: where, its per-mount options (mountinfo field 6), and its filesystem's (after "-"). */
export interface MountHolding {
  mountPoint: string;
  options: string[];
  superOptions: string[];
}

/** The mount holding `dir` (the topmost of the longest mount points it is under), or null when none is listed. */
export async function mountHolding(dir: string): Promise<MountHolding | null> {
  const [resolved, text] = await Promise.all([realpath(dir), readFile('/proc/self/mountinfo', 'utf8')]);
  const target = path.resolve(resolved);
  let best: MountHolding | null = null;
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const mountPoint = fields[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const options = fields[5];
    if (mountPoint === undefined || options === undefined) continue;
    // Optional fields (field 7 on) end at a lone "-": then the filesystem type, the source, and its own options.
    const dash = fields.indexOf('-', 6);
    const superOptions = dash === -1 ? [] : (fields[dash + 3] ?? '').split(',');
    const inside = mountPoint === '/' || target === mountPoint || target.startsWith(`${mountPoint}/`);
    // The last of equally long mount points is the one on top.
    if (inside && (best === null || mountPoint.length >= best.mountPoint.length)) best = { mountPoint, options: options.split(','), superOptions };
  }
  return best;
}

/** The per-mount options of the mount holding `dir`. */
export async function mountSafety(dir: string): Promise<MountSafety> {
  const best = await mountHolding(dir);
  if (best === null) return { mountPoint: '/', nosuid: false, nodev: false };
  return { mountPoint: best.mountPoint, nosuid: best.options.includes('nosuid'), nodev: best.options.includes('nodev') };
}

export function mountAdvice(safety: MountSafety): string | null {
  const missing = [safety.nosuid ? null : 'nosuid', safety.nodev ? null : 'nodev'].filter((x) => x !== null);
  if (missing.length === 0) return null;
  return (
    `the volumes are on ${safety.mountPoint}, mounted without ${missing.join(',')}: device nodes or setuid files in ` +
    `received snapshots would work there; remount it with nosuid,nodev (mount -o remount,nosuid,nodev ${safety.mountPoint}, ` +
    'and in /etc/fstab)'
  );
}

/** What the server does with device nodes and setuid files in received streams (ServiceOptions.privilegedFiles). */
export type PrivilegedFiles = 'allow' | 'inert-mount' | 'refuse';

/** At start: refuses ('inert-mount') or warns ('allow') when the volumes' mount would let such files work. */
export async function checkMount(volumes: string, privilegedFiles: PrivilegedFiles, log: Pick<Logger, 'warn'>): Promise<void> {
  const advice = mountAdvice(await mountSafety(volumes));
  if (advice === null || privilegedFiles === 'refuse') return;
  if (privilegedFiles === 'inert-mount') {
    throw new SnapferryError('mount_not_inert', `refusing to start: ${advice}; or start with privilegedFiles 'refuse' or 'allow'`);
  }
  log.warn({ volumes }, `${advice}; or set privilegedFiles 'refuse' to refuse such streams`);
}
