/**
 * Where the server keeps things under its root (docs/design.md, "Where state lives"). Every path is built here from
 * validated names, so no other module joins user input into a path.
 *
 *   ROOT/catalog.json                          received snapshots and transfers
 *   ROOT/serve.lock                            flock(2)ed by the one process that may change the root
 *                                              (server/root-lock.ts); it holds that process's pid
 *   ROOT/spool/ID, ID.json, ID.frames          a framed upload, tus's record of it, and its verified-frame index
 *   ROOT/volumes/CLIENT/VOLUME/NAME            received snapshots (read-only subvolumes)
 *   ROOT/volumes/CLIENT/VOLUME/.incoming-ID     what `btrfs receive` is writing (core/receive); renamed
 *                                              to NAME only once checked, so a half-received snapshot never carries
 *                                              a snapshot's name
 *   ROOT/receiving/ID.json                     what that folder held before ID's receive started, until its cleanup
 *                                              is done (server/volume-folder.ts); out of the chroot's reach
 *   ROOT/digests/CLIENT/VOLUME/UUID.digest     the tree digest of the received snapshot UUID (server/verify/)
 */
import path from 'node:path';
import type { SafeName, Uuid } from '../core/names.ts';

export class ServerLayout {
  readonly root: string;
  readonly spool: string;
  readonly volumes: string;
  readonly catalog: string;
  readonly receiving: string;
  readonly digests: string;
  readonly lockFile: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.spool = path.join(this.root, 'spool');
    this.volumes = path.join(this.root, 'volumes');
    this.catalog = path.join(this.root, 'catalog.json');
    this.receiving = path.join(this.root, 'receiving');
    this.digests = path.join(this.root, 'digests');
    this.lockFile = path.join(this.root, 'serve.lock');
  }

  /** The saved tree digest of a received snapshot, by its UUID (stable across renames; server/verify/saved-digests.ts). */
  digestFile(client: SafeName, volume: SafeName, uuid: Uuid): string {
    return path.join(this.digests, client, volume, `${uuid}.digest`);
  }

  volumeDir(client: SafeName, volume: SafeName): string {
    return path.join(this.volumes, client, volume);
  }

  snapshotPath(client: SafeName, volume: SafeName, name: SafeName): string {
    return path.join(this.volumeDir(client, volume), name);
  }

  /** The name a snapshot is received under until it is checked: a dot name, which no SafeName can be. */
  incomingName(transferId: string): string {
    return `${INCOMING_PREFIX}${transferId}`;
  }

  /** What the volume's folder held before the transfer's receive started (server/volume-folder.ts). */
  folderRecordFile(transferId: string): string {
    return path.join(this.receiving, `${transferId}.json`);
  }

  spoolFile(transferId: string): string {
    return path.join(this.spool, transferId);
  }

  frameIndexFile(transferId: string): string {
    return path.join(this.spool, `${transferId}.frames`);
  }

  /** tus's record of the upload, beside the spool (server/upload-store/record.ts). */
  uploadRecordFile(transferId: string): string {
    return path.join(this.spool, `${transferId}.json`);
  }

  /** Everything an upload keeps in the spool folder: what deleting a spool deletes. */
  spoolFiles(transferId: string): string[] {
    return [this.spoolFile(transferId), this.uploadRecordFile(transferId), this.frameIndexFile(transferId)];
  }
}

export const INCOMING_PREFIX = '.incoming-';

/** tus ids are ours (see server/upload-store/tus-server.ts): 32 lowercase hex digits. Anything else is not one of our uploads. */
const TRANSFER_ID_RE = /^[0-9a-f]{32}$/;
export function isTransferId(value: string): boolean {
  return TRANSFER_ID_RE.test(value);
}
