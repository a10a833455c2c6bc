/**
 * Which transfers hold their volume's folder: one receive runs in a volume at a time (docs/design.md, "The receive"),
 * so a new upload is refused while one holds it (`volume_busy`), and a receive's cleanup keeps what the others hold
 * there (server/volume-folder.ts othersInFolder). Both ask this, so they cannot disagree.
 */
import { inProgress } from '../../core/protocol.ts';
import type { TransferRecord } from '../catalog.ts';

/** Whether the `btrfs receive` of a transfer still works in its folder (server/live-receives.ts isReceiving). */
export type ReceivingNow = (id: string) => boolean;

/**
 * In progress, or ended with its receive still stopping. A transfer that fails or is aborted is final in the catalog
 * a moment before its receive has stopped and deleted its partial subvolume; counting the state alone let a new push
 * begin its receive in the folder meanwhile.
 */
export function holdsVolume(t: Pick<TransferRecord, 'id' | 'state'>, receiving: ReceivingNow): boolean {
  return inProgress(t.state) || receiving(t.id);
}
