/**
 * Pure parsers for what btrfs-progs prints (checked against btrfs-progs 6.2). No I/O here, so each is unit-tested
 * on captured output; anything that does not fit the expected shape is a BtrfsOutputError, never a guess.
 */
import { BtrfsOutputError } from './errors.ts';

export interface SubvolumeInfo {
  /** Path from the filesystem's top level as btrfs prints it ('/' for the top level itself). */
  path: string;
  name: string;
  uuid: string;
  /** UUID of the subvolume this one is a snapshot of. */
  parentUuid: string | null;
  /** Set by btrfs receive: the UUID of the subvolume on the sending side. */
  receivedUuid: string | null;
  readonly: boolean;
  subvolumeId: number;
  parentId: number;
  topLevelId: number;
  generation: number;
  genAtCreation: number;
  creationTime: Date | null;
  sendTransid: number;
  receiveTransid: number;
  receiveTime: Date | null;
  /** Snapshots of this subvolume, as paths from the filesystem's top level. */
  snapshots: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses `btrfs subvolume show PATH`. */
export function parseSubvolumeShow(text: string): SubvolumeInfo {
  const what = 'btrfs subvolume show';
  const lines = text.split('\n');
  const path = lines[0]?.trim() ?? '';
  if (path === '') throw new BtrfsOutputError(what, text, 'the first line (the path) is empty');
  const fields = new Map<string, string>();
  const snapshots: string[] = [];
  let inSnapshots = false;
  for (const line of lines.slice(1)) {
    const field = /^\t([A-Za-z][^:\t]*):[\t ]*(.*)$/.exec(line);
    if (field?.[1] !== undefined && field[2] !== undefined) {
      fields.set(field[1], field[2].trim());
      inSnapshots = field[1] === 'Snapshot(s)';
      continue;
    }
    const snapshot = /^\t\t+(\S.*)$/.exec(line);
    if (inSnapshots && snapshot?.[1] !== undefined) snapshots.push(snapshot[1]);
  }
  const get = (key: string): string => {
    const value = fields.get(key);
    if (value === undefined) throw new BtrfsOutputError(what, text, `no "${key}:" line`);
    return value;
  };
  const int = (key: string): number => toInt(get(key), what, text, key);
  const time = (key: string): Date | null => (fields.has(key) ? toDate(get(key), what, text, key) : null);
  const uuid = toUuid(get('UUID'), what, text, 'UUID');
  if (uuid === null) throw new BtrfsOutputError(what, text, 'UUID is "-"');
  return {
    path,
    name: get('Name'),
    uuid,
    parentUuid: toUuid(get('Parent UUID'), what, text, 'Parent UUID'),
    receivedUuid: toUuid(get('Received UUID'), what, text, 'Received UUID'),
    readonly: get('Flags').split(/[\s,]+/).includes('readonly'),
    subvolumeId: int('Subvolume ID'),
    parentId: int('Parent ID'),
    topLevelId: int('Top level ID'),
    generation: int('Generation'),
    genAtCreation: int('Gen at creation'),
    creationTime: time('Creation time'),
    sendTransid: int('Send transid'),
    receiveTransid: int('Receive transid'),
    receiveTime: time('Receive time'),
    snapshots,
  };
}

export interface SubvolumeListEntry {
  id: number;
  gen: number;
  topLevel: number;
  /**
   * As btrfs prints it: from the filesystem's top level when the top level is what is mounted (how the fixture and
   * a server mount); under a `subvol=` mount btrfs-progs prints subvolumes inside the mounted one relative to it.
   */
  path: string;
  uuid: string;
  parentUuid: string | null;
  receivedUuid: string | null;
}

const SUBVOLUME_LIST_LINE = /^ID (\d+) gen (\d+) top level (\d+) parent_uuid (\S+)\s+received_uuid (\S+)\s+uuid (\S+) path (.+)$/;

/**
 * Parses `btrfs subvolume list -u -q -R [-r] PATH`.
 *
 * A subvolume's name may hold newlines, and any user who may write a folder on the filesystem can make one; btrfs
 * prints the path raw, as the last field. So a line that is not a record goes on the path of the record before it:
 * one such name anywhere on the filesystem failed every incremental push. A name made to look like a record line
 * yields an entry of its own; callers check each entry they use with `btrfs subvolume show` (findParentCandidates),
 * so it can only hide its maker's own subvolume.
 */
export function parseSubvolumeList(text: string): SubvolumeListEntry[] {
  const what = 'btrfs subvolume list';
  const entries: SubvolumeListEntry[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop(); // the output's own last newline
  for (const line of lines) {
    const m = SUBVOLUME_LIST_LINE.exec(line);
    if (m === null) {
      const last = entries.at(-1);
      if (last !== undefined) last.path += `\n${line}`;
      else if (line.trim() !== '') throw new BtrfsOutputError(what, text, `unexpected line: ${line}`);
      continue;
    }
    const [, id = '', gen = '', topLevel = '', parentUuid = '', receivedUuid = '', uuid = '', path = ''] = m;
    const ownUuid = toUuid(uuid, what, text, 'uuid');
    if (ownUuid === null) throw new BtrfsOutputError(what, text, `no uuid in: ${line}`);
    entries.push({
      id: toInt(id, what, text, 'ID'),
      gen: toInt(gen, what, text, 'gen'),
      topLevel: toInt(topLevel, what, text, 'top level'),
      path,
      uuid: ownUuid,
      parentUuid: toUuid(parentUuid, what, text, 'parent_uuid'),
      receivedUuid: toUuid(receivedUuid, what, text, 'received_uuid'),
    });
  }
  return entries;
}

/** Parses `btrfs property get -ts PATH ro`: "ro=true" or "ro=false". */
export function parseReadonlyProperty(text: string): boolean {
  const m = /^ro=(true|false)$/m.exec(text);
  if (m === null) throw new BtrfsOutputError('btrfs property get ro', text, 'no "ro=true" or "ro=false" line');
  return m[1] === 'true';
}

/**
 * The subvolume that `btrfs receive` created, from its output ("At subvol NAME" on stderr for a full stream,
 * "At snapshot NAME" on stdout for an incremental one). The last one wins when one input held several streams.
 * Null when it never got that far.
 */
export function parseReceivedSubvolume(stderr: string): string | null {
  let name: string | null = null;
  for (const m of stderr.matchAll(/^At (?:subvol|snapshot) (.+)$/gm)) name = m[1] ?? null;
  return name;
}

/** The subvolume named by the first command of `btrfs receive --dump` output ("subvol ./NAME uuid=..."). */
export function parseDumpSubvolume(dump: string): string | null {
  const m = /^(?:subvol|snapshot)\s+((?:\\.|\S)+)\s+uuid=/m.exec(dump);
  if (m?.[1] === undefined) return null;
  return unescapeDumpPath(m[1]).replace(/^\.\//, '');
}

/** btrfs receive --dump escapes whitespace and unprintable bytes in paths with backslashes (C and octal escapes). */
export function unescapeDumpPath(escaped: string): string {
  const simple: Record<string, number> = { a: 7, b: 8, e: 27, f: 12, n: 10, r: 13, t: 9, v: 11 };
  const bytes: number[] = [];
  const raw = Buffer.from(escaped, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] ?? 0;
    if (c !== 0x5c || i + 1 >= raw.length) {
      bytes.push(c);
      continue;
    }
    const next = String.fromCharCode(raw[i + 1] ?? 0);
    const octal = /^[0-7]{3}$/.exec(raw.subarray(i + 1, i + 4).toString('latin1'));
    if (octal !== null) {
      bytes.push(parseInt(octal[0], 8));
      i += 3;
    } else {
      bytes.push(simple[next] ?? next.charCodeAt(0));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function toInt(value: string, what: string, text: string, key: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new BtrfsOutputError(what, text, `${key} is not a whole number: "${value}"`);
  }
  return n;
}

function toUuid(value: string, what: string, text: string, key: string): string | null {
  if (value === '-') return null;
  if (!UUID.test(value)) throw new BtrfsOutputError(what, text, `${key} is not a UUID: "${value}"`);
  return value;
}

/** btrfs-progs prints times as strftime "%Y-%m-%d %X %z", e.g. "2024-05-01 13:45:10 +0200"; "-" for none. */
function toDate(value: string, what: string, text: string, key: string): Date | null {
  if (value === '-') return null;
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ([+-]\d\d)(\d\d)$/.exec(value);
  const date = m === null ? null : new Date(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
  if (date === null || Number.isNaN(date.getTime())) {
    throw new BtrfsOutputError(what, text, `${key} is not a time: "${value}"`);
  }
  return date;
}
