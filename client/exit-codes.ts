/**
 * The one place where an outcome becomes an exit code, for systemd timers and cron (documented in the README).
 */
import { SnapferryError } from '../core/errors.ts';
import { RECEIVE_WAITING } from './push/receive-waiting.ts';

/** A restore that filled the disk it restores onto (client/restore/disk-full.ts): temporary, once space is freed. Here, not
 * there, so that every command's exit code is known without loading the restore. */
export const RESTORE_DISK_FULL = 'restore_disk_full';

/** `snapshots --volume V` of a volume the server holds nothing of (client/status/snapshots.ts): a name to check, as
 * restore's snapshot_not_on_server. Here, so that the code is known without loading the command. */
export const VOLUME_NOT_ON_SERVER = 'volume_not_on_server';

/** `serve`'s mistakes that no restart heals (server/root-check.ts, server/tokens.ts); tokens_file_locked is a wait. */
const SERVE_MISTAKES = new Set(['root_not_btrfs', 'tokens_file_missing', 'tokens_file_unreadable', 'tokens_file_invalid']);

/**
 * client/restore/local.ts, target-owner.ts, restore.ts and receive.ts. restore_target_exists among them: what is in
 * the way may want a look before it is moved, but no run again gets past it, as no second `key generate` gets past a
 * key file that exists.
 */
const RESTORE_FOLDER_MISTAKES = new Set(['restore_target_missing', 'restore_target_not_btrfs', 'restore_target_read_only', 'parent_dir_elsewhere', 'restore_target_exists', 'restore_target_unsafe']);

/** `client add` of a name the tokens file has, `client remove` of one it has not (server/tokens.ts): a name to change. */
const CLIENT_NAME_MISTAKES = new Set(['client_exists', 'client_not_found']);

export const EXIT = {
  ok: 0,
  /** Something failed that retrying will not fix: read the message. */
  failed: 1,
  /** The command line or a name was wrong. */
  usage: 2,
  /** A temporary failure (network, server busy, a receive that waits for the server's disk): run again later, nothing is lost. */
  temporary: 75, // EX_TEMPFAIL, which cron wrappers and systemd know
  /** `verify` (or restore's check) found the server's copy different from the snapshot: the differences are listed. */
  differences: 3,
  /** Another `snapferry run` holds the run lock, or another restore holds DEST_DIR's (dest_busy): this one did nothing. */
  locked: 73, // EX_CANTCREAT: the lock file could not be created
  interrupted: 130,
} as const;

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof SnapferryError)) return EXIT.failed;
  if (err.code === 'cancelled' || err.code === 'btrfs_cancelled') return EXIT.interrupted;
  if (err.code === 'run_locked' || err.code === 'dest_busy') return EXIT.locked;
  // A --lock-file that cannot be a lock file (a folder, a path this user may not write): another path to give.
  if (err.code === 'lock_file_unusable') return EXIT.usage;
  if (err.code === 'verify_differences') return EXIT.differences;
  // Another process holds the server root (server/root-lock.ts): waiting will not end a server, someone must decide.
  if (err.code === 'root_locked') return EXIT.failed;
  if (err.code === 'invalid_input' || err.code === 'mixed_sources' || err.code.startsWith('snapshot_not_') || err.code === VOLUME_NOT_ON_SERVER) return EXIT.usage;
  // --server given as the API's URL (…/v1), which the server's answer showed: the URL to give instead is in the message.
  if (err.code === 'server_url_api_path') return EXIT.usage;
  // A config file that does not validate: the same mistake given as a flag is a usage error too (a URL without a scheme).
  if (err.code === 'config_invalid') return EXIT.usage;
  // A config file that is missing or that this user may not read (--config mistyped, a sudo forgotten): the same.
  if (err.code === 'config_unreadable') return EXIT.usage;
  // A server root this process may not write (server/root-check.ts): the unit's ReadWritePaths= or a mount to fix,
  // which a restart does not.
  if (err.code === 'root_read_only') return EXIT.usage;
  // A server root off btrfs, or a tokens file that is missing, unreadable or invalid (server/root-check.ts,
  // server/tokens.ts): the operator's to fix. Under snapferry-server.service, exit 1 restarted it every 10 s for ever;
  // 2 is its RestartPreventExitStatus=.
  if (SERVE_MISTAKES.has(err.code)) return EXIT.usage;
  // A restore's DEST_DIR or --parent-dir that cannot take it (missing, off btrfs, a read-only snapshot, the two on
  // different filesystems, the snapshot's name taken): the user picks another folder or clears the way.
  if (RESTORE_FOLDER_MISTAKES.has(err.code)) return EXIT.usage;
  if (CLIENT_NAME_MISTAKES.has(err.code)) return EXIT.usage;
  // A key file that exists (key generate never replaces one), is missing, damaged or open to others: the user picks the path.
  if (err.code.startsWith('key_file_')) return EXIT.usage;
  // A token file open to others (client/http/token.ts): the user's chmod, as for a key file.
  if (err.code.startsWith('token_file_')) return EXIT.usage;
  // An archive server's S3 keys missing, ambiguous or open to others: the operator's config to fix.
  if (err.code.startsWith('store_credentials_')) return EXIT.usage;
  // The server holds the whole stream and receives it once it can (a full disk): a later run finds it received.
  if (err.code === RECEIVE_WAITING) return EXIT.temporary;
  // A restore that filled this machine's disk: nothing is lost, and the same command resumes once space is freed. Not
  // retryable (the restore does not wait for space by itself), yet temporary to a timer that runs it again.
  if (err.code === RESTORE_DISK_FULL) return EXIT.temporary;
  if (err.retryable) return EXIT.temporary;
  return EXIT.failed;
}
