/**
 * What this machine's btrfs can do with send streams, and which way of sending a push uses (--send-compressed).
 *
 * `btrfs send --proto 2 --compressed-data` needs the kernel to write stream version 2
 * (/sys/fs/btrfs/features/send_stream_version, 2 from Linux 6.0) and btrfs-progs 6.0 or later (5.19 had it behind
 * its experimental build only). `btrfs receive` reads version 2 from btrfs-progs 6.0 on, and falls back to
 * decompressing an ENCODED_WRITE itself when the kernel's encoded-write ioctl refuses it. Read once per process.
 */
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { SnapferryError } from '../errors.ts';
import type { SendStream } from '../protocol.ts';
import { mountOf, type MountEntry } from './mounts.ts';
import { runBtrfs } from './run.ts';
import type { SendOptions } from './send.ts';

export const SEND_STREAM_VERSION_FILE = '/sys/fs/btrfs/features/send_stream_version';
/** The first btrfs-progs whose send and receive speak stream version 2 in a default build. */
export const PROGS_WITH_V2 = { major: 6, minor: 0 } as const;

export interface ProgsVersion {
  major: number;
  minor: number;
  /** As `btrfs --version` printed it, e.g. "v6.2". */
  text: string;
}

export interface BtrfsFeatures {
  /** null when `btrfs --version` could not be run or read. */
  progs: ProgsVersion | null;
  /** Highest send stream version the kernel writes; 1 when the kernel does not say (before Linux 5.16). */
  kernelSendStreamVersion: number;
  /** The ways `btrfs send` can make a stream here. */
  sendStreams: readonly SendStream[];
  /** Send stream versions `btrfs receive` reads here. */
  receiveStreamVersions: readonly number[];
}

/** "btrfs-progs v6.2" (newer ones add lines of build features after it) -> 6.2; null when it is not that. */
export function parseProgsVersion(text: string): ProgsVersion | null {
  const m = /btrfs-progs (v(\d+)\.(\d+)(?:\.\d+)*)/.exec(text);
  if (!m) return null;
  return { major: Number(m[2]), minor: Number(m[3]), text: m[1]! };
}

function progsHaveV2(progs: ProgsVersion | null): boolean {
  if (progs === null) return false;
  return progs.major > PROGS_WITH_V2.major || (progs.major === PROGS_WITH_V2.major && progs.minor >= PROGS_WITH_V2.minor);
}

/** The features from what `btrfs --version` printed and what the sysfs file holds (null: could not be read). */
export function featuresFrom(versionText: string | null, sysfsText: string | null): BtrfsFeatures {
  const progs = versionText === null ? null : parseProgsVersion(versionText);
  const kernel = Number.parseInt(sysfsText?.trim() ?? '', 10);
  const kernelSendStreamVersion = Number.isInteger(kernel) && kernel >= 1 ? kernel : 1;
  const v2 = progsHaveV2(progs);
  return {
    progs,
    kernelSendStreamVersion,
    sendStreams: v2 && kernelSendStreamVersion >= 2 ? ['v1', 'v2-compressed'] : ['v1'],
    receiveStreamVersions: v2 ? [1, 2] : [1],
  };
}

async function detect(): Promise<BtrfsFeatures> {
  const [versionText, sysfsText] = await Promise.all([
    runBtrfs(['--version']).catch(() => null),
    // Absent before Linux 5.16, or while the btrfs module is not loaded.
    readFile(SEND_STREAM_VERSION_FILE, 'utf8').catch(() => null),
  ]);
  return featuresFrom(versionText, sysfsText);
}

let cached: Promise<BtrfsFeatures> | undefined;

/** This machine's features, detected on the first call; neither btrfs-progs nor the kernel change under us. */
export function btrfsFeatures(): Promise<BtrfsFeatures> {
  cached ??= detect();
  return cached;
}

/**
 * The `btrfs send` options that make `stream`. Version 1 is asked for by name where btrfs-progs knows --proto, so a
 * later btrfs-progs with another default still regenerates the stream a transfer began with.
 */
export function sendOptionsFor(stream: SendStream, features: BtrfsFeatures): Pick<SendOptions, 'proto' | 'compressedData'> {
  if (stream === 'v2-compressed') return { proto: 2, compressedData: true };
  return progsHaveV2(features.progs) ? { proto: 1 } : {};
}

/**
 * The compression the filesystem holding `p` is mounted with (`compress=zstd:3`, `compress-force=lzo`), or null.
 * btrfs shows it among the super options of proc(5) mountinfo, after " - ", which mounts.ts's entries leave out.
 */
export async function mountCompression(p: string): Promise<string | null> {
  const [resolved, text] = await Promise.all([realpath(p), readFile('/proc/self/mountinfo', 'utf8')]);
  const entries: (MountEntry & { superOptions: string })[] = [];
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const mountPoint = line.slice(0, dash).split(' ')[4];
    const [fsType, source, superOptions] = line.slice(dash + 3).split(' ');
    if (mountPoint === undefined || fsType === undefined) continue;
    entries.push({ mountPoint: unescapeOctal(mountPoint), root: '', fsType, source: source ?? '', superOptions: superOptions ?? '' });
  }
  // mountOf hands back one of the entries it was given.
  const mount = mountOf(entries, path.resolve(resolved)) as (typeof entries)[number] | null;
  if (mount === null || mount.fsType !== 'btrfs') return null;
  const found = mount.superOptions.split(',').find((o) => /^compress(-force)?=/.test(o));
  return found === undefined || /=no$/.test(found) ? null : found;
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes (\040 ...). */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

import type { SendCompressedMode } from './send-compressed.ts';

export { sendCompressedModes, type SendCompressedMode } from './send-compressed.ts';

/** --send-compressed on, where this machine or the server cannot do it. Retrying cannot help. */
export class SendCompressedUnsupported extends SnapferryError {
  constructor(reason: string, details: Record<string, unknown>) {
    super(
      'send_compressed_unsupported',
      `--send-compressed on: ${reason}; use --send-compressed auto to send without it where it cannot be used`,
      { retryable: false, details },
    );
  }
}

export interface SendStreamFacts {
  local: BtrfsFeatures;
  /** Where the snapshots live; asked only in 'auto' mode. */
  sourceCompression: () => Promise<string | null>;
  /** What the server's `btrfs receive` reads (GET /v1/status); asked only once the local side can send version 2. */
  serverVersions: () => Promise<readonly number[]>;
}

export interface SendStreamChoice {
  stream: SendStream;
  /** Why: what made version 2 worth it, or what ruled it out. */
  why: string;
  /** Version 2 would have helped (or was asked for) but this machine or the server cannot: worth telling. */
  fellBack: boolean;
}

/**
 * How a push sends new transfers. 'auto' uses --compressed-data only where it helps: on a filesystem mounted with
 * compression, whose extents then cross as they lie on disk instead of being decompressed for the stream and
 * compressed again for the wire; elsewhere it would only change the stream's format.
 */
export async function chooseSendStream(mode: SendCompressedMode, facts: SendStreamFacts): Promise<SendStreamChoice> {
  if (mode === 'off') return { stream: 'v1', why: '--send-compressed off', fellBack: false };
  const compression = mode === 'auto' ? await facts.sourceCompression() : null;
  if (mode === 'auto' && compression === null) {
    return { stream: 'v1', why: 'the snapshots are on a filesystem mounted without compression', fellBack: false };
  }
  const { local } = facts;
  if (!local.sendStreams.includes('v2-compressed')) {
    const why = !progsHaveV2(local.progs)
      ? `btrfs-progs ${local.progs?.text ?? '(unknown version)'} here cannot send stream version 2 (needs ${PROGS_WITH_V2.major}.${PROGS_WITH_V2.minor} or later)`
      : `this kernel writes send stream version ${local.kernelSendStreamVersion} at most (needs 2: Linux 6.0 or later)`;
    if (mode === 'on') throw new SendCompressedUnsupported(why, { progs: local.progs?.text ?? null, kernel: local.kernelSendStreamVersion });
    return { stream: 'v1', why, fellBack: true };
  }
  const server = await facts.serverVersions();
  if (!server.includes(2)) {
    const why = `the server's btrfs receive reads send stream version ${server.join(', ')} only (it needs btrfs-progs 6.0 or later)`;
    if (mode === 'on') throw new SendCompressedUnsupported(why, { serverVersions: server });
    return { stream: 'v1', why, fellBack: true };
  }
  const why = compression === null ? '--send-compressed on' : `the snapshots' filesystem is mounted ${compression}`;
  return { stream: 'v2-compressed', why, fellBack: false };
}

/** Whether this machine can make `stream` (a transfer's recorded stream that a resume must regenerate). */
export function canSend(stream: SendStream, features: BtrfsFeatures): boolean {
  return features.sendStreams.includes(stream);
}
