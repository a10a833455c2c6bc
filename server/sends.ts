/**
 * The received snapshots this server is sending now (a restore's btrfs send, server/restore.ts), the parent of an
 * incremental send among them. btrfs refuses to delete a subvolume that a send reads ("send may be in progress",
 * EPERM), and the restore would lose its source: retention (server/retention.ts) passes them over, and prunes their
 * volume again once the last send of it has ended.
 */
type VolumeListener = (client: string, volume: string) => void;

export class SendsInProgress {
  /** Sends under way, by client/volume/uuid. */
  private readonly held = new Map<string, number>();
  private readonly listeners: VolumeListener[] = [];

  /** Marks the snapshots with `uuids` as being sent until the returned function is called (once is enough). */
  hold(client: string, volume: string, uuids: readonly string[]): () => void {
    const keys = uuids.map((uuid) => key(client, volume, uuid));
    for (const k of keys) this.held.set(k, (this.held.get(k) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of keys) {
        const left = (this.held.get(k) ?? 1) - 1;
        if (left > 0) this.held.set(k, left);
        else this.held.delete(k);
      }
      if (!this.volumeBusy(client, volume)) for (const listener of this.listeners) listener(client, volume);
    };
  }

  sending(client: string, volume: string, uuid: string): boolean {
    return this.held.has(key(client, volume, uuid));
  }

  /** Called when a volume's last send has ended. */
  onVolumeIdle(listener: VolumeListener): void {
    this.listeners.push(listener);
  }

  private volumeBusy(client: string, volume: string): boolean {
    const prefix = `${client}/${volume}/`;
    for (const k of this.held.keys()) if (k.startsWith(prefix)) return true;
    return false;
  }
}

function key(client: string, volume: string, uuid: string): string {
  return `${client}/${volume}/${uuid}`;
}
