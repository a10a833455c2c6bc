/**
 * Ctrl-C (SIGINT), and SIGTERM from systemd, for the client's commands: one AbortSignal that the work is given, and
 * one way to end, wherever the abort surfaced (an AbortError from fetch, a cancelled btrfs, a stopped upload): exit
 * 130 and say that running the command again resumes (uploads and restores keep what arrived). A second Ctrl-C
 * kills at once, as people expect of a command that does not stop fast enough.
 */
import type { Command } from 'commander';
import { EXIT } from '../client/cli-options.ts';

export const INTERRUPTED = 'interrupted: run the same command again to resume';

let controller: AbortController | null = null;

/** The signal the command's work stops on; the first call installs the handlers. */
export function interruptSignal(): AbortSignal {
  if (controller === null) {
    const c = new AbortController();
    controller = c;
    // `on`, not `once`: signal-exit (in proper-lockfile, execa) kills the process with the signal again when it finds
    // no other listener, which would end it before the work has stopped and said so.
    const onSignal = () => {
      if (!c.signal.aborted) return c.abort();
      process.stderr.write(`snapferry: ${INTERRUPTED}\n`);
      process.exit(EXIT.interrupted);
    };
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, onSignal);
  }
  return controller.signal;
}

/**
 * The handlers from the moment `command` is known to run, not from when its work first asks for the signal: before
 * that (loading the client's code, reading the config and the token: push's first second), Ctrl-C found no handler,
 * and Node's default ended the process with 130 and without the line that says to run it again. Work begun after an
 * early Ctrl-C finds the signal aborted, and stops as at a later one. Not for `serve`, which stops in its own way.
 */
export function stopsOnInterrupt(command: Command): Command {
  return command.hook('preAction', () => void interruptSignal());
}

/** When the command was interrupted, says so and sets exit code 130; returns whether it was. */
export function endIfInterrupted(): boolean {
  if (controller?.signal.aborted !== true) return false;
  process.stderr.write(`snapferry: ${INTERRUPTED}\n`);
  process.exitCode = EXIT.interrupted;
  return true;
}
