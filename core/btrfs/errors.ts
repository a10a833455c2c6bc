import { SnapferryError } from '../errors.ts';

/** How much of stderr an error keeps: enough for btrfs's last complaints, small enough for a log line or JSON. */
export const STDERR_TAIL_LINES = 20;
export const STDERR_TAIL_BYTES = 2048;

export interface BtrfsCommandErrorFields {
  /** The argv that ran, program first, e.g. ['btrfs', 'send', '-p', '/snaps/a', '/snaps/b']. */
  command: readonly string[];
  exitCode: number | null;
  signal: string | null;
  /** The last STDERR_TAIL_LINES lines (at most STDERR_TAIL_BYTES) of what the command wrote to stderr. */
  stderrTail: string;
  /** Ended by an AbortSignal (or by the consumer closing a send stream) rather than failing by itself. */
  cancelled?: boolean;
  /** Why it could not run or was stopped, when that was not the command's own doing (spawn error, input error). */
  reason?: string;
  /** Overrides the code chosen from `cancelled` (e.g. btrfs_input_failed when receive's input broke). */
  code?: string;
  /** Overrides the default (false), e.g. to carry over a retryable cause. */
  retryable?: boolean;
  cause?: unknown;
  details?: Record<string, unknown>;
}

/**
 * A btrfs command that failed, was killed, or could not start. The message says what ran and why it stopped, with
 * the tail of stderr, so a person reading one log line knows what to look at.
 *
 * `code` is `btrfs_cancelled` when our side stopped it (AbortSignal), `btrfs_input_failed` when receive's input
 * broke (the input's error is the `cause`), `btrfs_failed` otherwise. Not retryable by default:
 * btrfs fails on the state of the filesystem (not read-only, no such parent, no space), which running it again
 * does not change; the caller that knows better (a transfer that can resume) decides.
 */
export class BtrfsCommandError extends SnapferryError {
  readonly command: readonly string[];
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderrTail: string;
  readonly cancelled: boolean;

  constructor(fields: BtrfsCommandErrorFields) {
    const cancelled = fields.cancelled ?? false;
    super(fields.code ?? (cancelled ? 'btrfs_cancelled' : 'btrfs_failed'), describeFailure(fields, cancelled), {
      retryable: fields.retryable ?? false,
      cause: fields.cause,
      details: {
        ...fields.details,
        command: fields.command,
        exitCode: fields.exitCode,
        signal: fields.signal,
        stderrTail: fields.stderrTail,
      },
    });
    this.command = fields.command;
    this.exitCode = fields.exitCode;
    this.signal = fields.signal;
    this.stderrTail = fields.stderrTail;
    this.cancelled = cancelled;
  }
}

function describeFailure(fields: BtrfsCommandErrorFields, cancelled: boolean): string {
  const what = formatCommand(fields.command);
  let how: string;
  if (fields.reason !== undefined) how = fields.reason;
  else if (cancelled) how = 'was cancelled';
  else if (fields.signal !== null) how = `was killed by ${fields.signal}`;
  else how = `exited with code ${fields.exitCode ?? 'unknown'}`;
  const stderr = fields.stderrTail.trim();
  return stderr === '' ? `${what} ${how}` : `${what} ${how}:\n${stderr}`;
}

/** argv as a person would type it; quoting only for reading, nothing ever runs through a shell. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

/** The last lines of `text`, at most STDERR_TAIL_LINES lines and STDERR_TAIL_BYTES characters. */
export function tailOf(text: string): string {
  const lines = text.replace(/\n+$/, '').split('\n');
  let tail = lines.slice(-STDERR_TAIL_LINES).join('\n');
  if (tail.length > STDERR_TAIL_BYTES) tail = '…' + tail.slice(-STDERR_TAIL_BYTES);
  return tail;
}

/** btrfs printed something we do not understand: a btrfs-progs version with a new format, or a bug of ours. */
export class BtrfsOutputError extends SnapferryError {
  constructor(what: string, output: string, problem: string) {
    super('btrfs_unexpected_output', `could not parse the output of ${what}: ${problem}`, {
      retryable: false,
      details: { output: tailOf(output) },
    });
  }
}
