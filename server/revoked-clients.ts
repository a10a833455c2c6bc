/**
 * A client removed from the tokens file (`snapferry client remove`, or its token replaced) can push no more: its
 * uploads in progress end as an abort ends them (receive stopped, partial subvolume and spool deleted) as soon as
 * the server sees the change, not when they expire days later. The admin's command only edits the file, so the
 * server's log is where the count is told. A server that was down when the client was removed sees no change: it
 * finds at start the uploads of clients the file does not hold (endUploadsOfAbsent). A token replaced while it was
 * down is not seen: the client's name is still there, and an upload does not record the token that began it.
 */
import type { SafeName } from '../core/names.ts';
import type { AppService } from './app-service.ts';
import type { Gate } from './auth.ts';
import type { Logger } from './log.ts';

export function endUploadsOfRevoked(gate: Gate, service: Pick<AppService, 'endUploadsOf'>, log: Logger): void {
  gate.onRevoked((client: SafeName) => {
    service.endUploadsOf(client).then(
      (ended) => log.info({ client, uploadsEnded: ended.length, transfers: ended }, 'client removed from the tokens file: its uploads in progress ended'),
      (err: unknown) => log.error({ err, client }, 'client removed from the tokens file: ending its uploads failed'),
    );
  });
}

/**
 * At start, before the server listens: the uploads in progress of clients the tokens file does not hold end as
 * above. A failure is logged and the server starts all the same: those uploads expire as before.
 */
export async function endUploadsOfAbsent(gate: Gate, service: Pick<AppService, 'endUploadsOf' | 'clientsWithUploads'>, log: Logger): Promise<void> {
  try {
    for (const client of gate.absent(await service.clientsWithUploads())) {
      const ended = await service.endUploadsOf(client);
      if (ended.length > 0) log.info({ client, uploadsEnded: ended.length, transfers: ended }, 'client not in the tokens file at start: its uploads in progress ended');
    }
  } catch (err) {
    log.error({ err }, 'ending the uploads of clients not in the tokens file at start failed');
  }
}
