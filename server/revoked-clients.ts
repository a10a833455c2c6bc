/**
 * A client removed from the tokens file (`snapferry client remove`, or its token replaced) can push no more: its
 * uploads in progress end as an abort ends them (receive stopped, partial subvolume and spool deleted) as soon as
 * the server sees the change, not when they expire days later. The admin's command only edits the file, so the
 * server's log is where the count is told.
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
