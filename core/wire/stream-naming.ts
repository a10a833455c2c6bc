/**
 * The name a pushed stream gives the subvolume it creates. btrfs send writes the snapshot's directory name into the
 * stream's first command (SUBVOL/SNAPSHOT's PATH), so a `mv` of the snapshot changed frame 0, and, the command's
 * length with it, every chunk boundary after it: a push resumed after a rename matched nothing of the server's upload
 * and sent it all again. Push frames the stream under the snapshot's UUID instead (the one its first command
 * carries: its identity, which no rename changes), renamed on the way by stream-rename.ts.
 *
 * No receiver uses the name: the server and restore receive under a staging name and rename the checked result to
 * the catalog's name (server/stream-start.ts, core/receive/checked-receive.ts), and a server only asks that it be
 * one plain name (core/names.ts), which a UUID is, so older servers take these streams as they are.
 *
 * Uploads begun before (by an older snapferry) carry the directory's name as it was then. A resume does not know
 * which naming the server holds, so it asks: the server's record of frame 0 (its chain) is matched against chunk 0
 * renamed each way (resumeNaming), from the one run of btrfs send the resume makes anyway.
 */
import { sha256, chainStep, CHAIN_ZERO } from './chain.ts';
import { SendAttr, formatSendUuid } from './sendstream-format.ts';
import { sendAttributeUuid } from './sendstream-attributes.ts';
import { firstCommandAttributes, renameFirstCommand, type NameChooser } from './stream-rename.ts';
import { SnapferryError } from '../errors.ts';
import { MAX_NAME_LENGTH, isSafeName } from '../names.ts';

/**
 * The byte length of every stable name, whatever the snapshot is called: any first command's 16-byte UUID, written
 * out as streamUuid writes it, named as stableStreamName names it. Derived from them, so it moves if either does.
 */
const STABLE_NAME_LENGTH = Buffer.byteLength(stableStreamName(formatSendUuid(new Uint8Array(16))));

/** The name push gives a snapshot's stream: its UUID, as the first command carries it. */
export function stableStreamName(uuid: string): string {
  return uuid.toLowerCase();
}

/** The UUID the first command of `head` carries (the stream's own identity). */
function streamUuid(head: Buffer): string {
  const uuid = sendAttributeUuid(firstCommandAttributes(head), SendAttr.UUID);
  if (uuid === undefined) throw new SnapferryError('sendstream_bad_command', 'the first command of the send stream has no UUID');
  return uuid;
}

/** Names every stream after its own UUID: how push frames a new upload. */
export function stableNaming(): NameChooser {
  return { lookahead: 0, choose: (head) => stableStreamName(streamUuid(head)) };
}

/**
 * The size of btrfs send's first read (core/btrfs/pipe-reads.ts) that keeps every later read one whole chunk once
 * the stable name replaced `dirName` (the kernel's name for the snapshot: its directory's), so that the encoder still
 * takes each chunk as it was read, without a copy. A wrong guess (a snapshot mounted elsewhere) costs that copy, not
 * correctness.
 */
export function firstReadSize(chunkSize: number, dirName: string): number {
  return chunkSize - (STABLE_NAME_LENGTH - Buffer.byteLength(dirName));
}

/** What the server holds of an upload's frame 0. */
export interface FrameZero {
  chunkSize: number;
  /** Hex chain after frame 0, from the server's frame records. */
  chain: string;
  /** The hash frame 0 carries for its raw chunk, when not the chunk's SHA-256 (a sealed stream: raw-prefix.ts). */
  frameHash?: (raw: Buffer, index: number) => Buffer;
}

export interface ResumeNaming extends NameChooser {
  /** The name chosen once the stream's start was read; null before. */
  readonly chosen: { name: string; stable: boolean } | null;
}

/**
 * The naming of an upload in progress: the stable one, or one of `legacyNames` (the names an older snapferry may have
 * framed it under: the directory's name when the upload began, which is the upload's snapshot name unless snapper
 * named the directory `snapshot`, and the directory's name now), whichever makes the chunk 0 the server verified as
 * frame 0. When none does (the stream differs anyway), the stable one: the resume's own check then finds where the
 * streams part.
 */
export function resumeNaming(frameZero: FrameZero, legacyNames: readonly string[]): ResumeNaming {
  let chosen: { name: string; stable: boolean } | null = null;
  const hashOf = frameZero.frameHash ?? ((raw: Buffer) => sha256(raw));
  const matches = (head: Buffer, ended: boolean, name: string): boolean => {
    const renamed = renameFirstCommand(head, name);
    // Cut short by the lookahead rather than by the stream's end, chunk 0 is not all here: never a match.
    if (!ended && renamed.length < frameZero.chunkSize) return false;
    const chunk = renamed.subarray(0, frameZero.chunkSize);
    return chainStep(CHAIN_ZERO, hashOf(chunk, 0)).toString('hex') === frameZero.chain;
  };
  return {
    // Chunk 0 under any name: the first command grows or shrinks by at most a name's length.
    lookahead: frameZero.chunkSize + MAX_NAME_LENGTH,
    choose(head, ended) {
      const stable = stableStreamName(streamUuid(head));
      const legacy = [...new Set(legacyNames)].filter((n) => n !== stable && isSafeName(n));
      const name = [stable, ...legacy].find((n) => matches(head, ended, n)) ?? stable;
      chosen = { name, stable: name === stable };
      return name;
    },
    get chosen() {
      return chosen;
    },
  };
}
