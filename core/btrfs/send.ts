import { closeSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { openOwnPipe, type OwnPipe } from './own-pipe.ts';
import { FilledReads, type ReadStep } from './pipe-reads.ts';
import { AS_IS, pushStep } from '../wire/chunk-step.ts';
import { startBtrfs, type BtrfsProcess } from './run.ts';

export interface SendOptions {
  /** Incremental send against this read-only snapshot (`-p`); the receiver must hold its received copy. */
  parent?: string;
  /** Extra read-only snapshots whose extents the stream may reference (`-c`). */
  cloneSources?: readonly string[];
  /** Send stream protocol version (`--proto`); btrfs-progs' default when absent (1 on 6.2). */
  proto?: number;
  /** Pass compressed extents through as they are (`--compressed-data`, needs proto 2). */
  compressedData?: boolean;
  /** Aborting kills btrfs send: the stream errors and `done` rejects with code btrfs_cancelled. */
  signal?: AbortSignal;
}

export interface ChunkedSendOptions extends SendOptions {
  /**
   * Read the stream into buffers of `size` bytes, each filled in place by the pipe's reads and pushed when full
   * (pipe-reads.ts), instead of one new buffer per pipe read: for a consumer that cuts the stream into chunks of that
   * size anyway (the frame encoder), which then gets each chunk without a copy. `allocate` may give back memory of a
   * chunk the consumer is done with. send()'s chunks are node's reads of the pipe (up to 64 KiB).
   */
  reads: SendReads;
}

export interface SendReads {
  size: number;
  /** The first chunk's size, when not `size` (FilledReadsOptions.firstSize). */
  firstSize?: number;
  allocate?: () => Buffer | null;
  /** What to do with each chunk as it is read (FilledReadsOptions.step); where node's reads stand in, with each of those. */
  step?: ReadStep;
}

export interface SendHandle {
  /**
   * The send stream, never buffered as a whole. It ends only after btrfs send has exited with code 0; when the
   * process fails it is destroyed with the BtrfsCommandError instead, so a consumer using pipeline() or
   * for-await can never take a failed send for a finished one. Destroying it early stops btrfs send.
   */
  stream: Readable;
  /**
   * Settles when btrfs send has exited: resolves on success, rejects with BtrfsCommandError. A consumer that does
   * not wait for the stream's 'end' (it stopped reading at an offset, or it counts bytes as they pass) must await
   * `done` before it trusts what it read. It never causes an unhandled rejection by itself. It settles once btrfs
   * has exited and its output is read to the end, or the stream is destroyed, or the signal aborts: a consumer
   * that stops reading without doing either keeps it pending.
   */
  done: Promise<void>;
  /** argv that runs, for logs. */
  command: readonly string[];
}

export function sendArgs(subvolume: string, options: SendOptions = {}): string[] {
  const args = ['send'];
  if (options.parent !== undefined) args.push('-p', options.parent);
  for (const source of options.cloneSources ?? []) args.push('-c', source);
  if (options.proto !== undefined) args.push('--proto', String(options.proto));
  if (options.compressedData === true) args.push('--compressed-data');
  // `--` so that a snapshot path starting with '-' is never read as an option.
  args.push('--', subvolume);
  return args;
}

/** Starts `btrfs send` of a read-only subvolume. */
export function send(subvolume: string, options: SendOptions = {}): SendHandle {
  return sendWithNodeReads(sendArgs(subvolume, options), options.signal);
}

/** Starts `btrfs send` of a read-only subvolume, its stream read into chunks (ChunkedSendOptions.reads). */
export function sendInChunks(subvolume: string, options: ChunkedSendOptions): Promise<SendHandle> {
  return sendIntoChunks(sendArgs(subvolume, options), options.reads, options.signal);
}

/** `btrfs send` with its stdout read by node: a new buffer of up to 64 KiB per pipe read. */
function sendWithNodeReads(args: readonly string[], signal: AbortSignal | undefined, step: ReadStep = AS_IS): SendHandle {
  const proc = startBtrfs(args, { signal, stdout: 'stream' });
  const stdout = proc.stdout;
  if (stdout === null) throw new Error('btrfs send started without a stdout pipe');

  // stdout reaches EOF when btrfs closes it, which can be before its exit code is known. Holding the end back in
  // flush() until the exit status is in makes 'end' mean "btrfs send succeeded", not merely "the pipe closed".
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      pushStep(this, () => step.take(chunk), callback);
    },
    flush(callback) {
      proc.exited.then(() => pushStep(this, () => step.end(), callback), (err: unknown) => callback(err as Error));
    },
  });
  // pipe() (not pipeline) keeps backpressure without forwarding stdout's own errors or early close: the
  // process's exit status, not the pipe's state, decides whether the stream failed.
  stdout.pipe(stream);
  stdout.on('error', () => {});
  proc.exited.catch((err: unknown) => stream.destroy(err as Error));
  return handleOf(proc, stream);
}

/**
 * `btrfs send` writing into a pipe of ours, read into chunk-sized buffers (SendOptions.reads). The pipe is a FIFO in
 * a temporary directory for a moment (own-pipe.ts): where none can be made (no writable TMPDIR, a unit's sandbox), the
 * send runs with node's reads instead, slower by the buffers it allocates but the same bytes. A backup must not fail
 * for want of a way to save CPU.
 */
async function sendIntoChunks(args: readonly string[], reads: SendReads, signal: AbortSignal | undefined): Promise<SendHandle> {
  let pipe: OwnPipe;
  try {
    pipe = await openOwnPipe();
  } catch {
    return sendWithNodeReads(args, signal, reads.step);
  }
  let proc: BtrfsProcess;
  try {
    proc = startBtrfs(args, { signal, stdout: pipe.writeFd });
  } catch (err) {
    closeSync(pipe.readFd);
    throw err;
  } finally {
    // The child has its own copy now; ours would keep the pipe open after btrfs exits, and the reader without EOF.
    closeSync(pipe.writeFd);
  }
  // The stream ends only once btrfs send exited 0, and is destroyed with its BtrfsCommandError otherwise.
  return handleOf(proc, new FilledReads(pipe.readFd, proc.exited, reads));
}

function handleOf(proc: BtrfsProcess, stream: Readable): SendHandle {
  // `done` reports every failure too; a caller that stopped reading and only awaits `done` (after an abort, say)
  // must not have its process crash on an 'error' event no one listens to. pipeline() and for-await still see it.
  stream.on('error', () => {});

  let settled = false;
  proc.exited.then(
    () => (settled = true),
    () => (settled = true),
  );
  stream.on('close', () => {
    if (!settled && !stream.readableEnded) proc.stop('the consumer closed the send stream before its end');
  });

  return { stream, done: proc.exited, command: proc.argv };
}
