/** The transfer refusals the replication core throws; server/http-errors.ts maps their codes to statuses. */
import { SnapferryError } from '../../core/errors.ts';

/** A new or changed transfer that clashes with what the server holds or runs (a 409 by its code). */
export class TransferConflict extends SnapferryError {}

export class NotFound extends SnapferryError {
  constructor(what: string) {
    super('not_found', `${what} not found`);
  }
}
