/**
 * A server that dies says why, in its own log. Node's default for an uncaught exception or an unhandled rejection
 * is a stack trace on stderr, which a JSON log reader (journald filters, the bench's log) does not see as an event;
 * and a process whose event loop ran dry exits 0 without a word. Here each of those ends in one log line: `fatal`
 * with the error for a crash (then exit 1, as Node would), `error` for any exit nobody asked for. (The server's log
 * is written synchronously, server/log.ts, so these last lines are not lost.)
 */
import type { Logger } from './log.ts';

/** Node's own exit code for an uncaught exception. */
export const EXIT_CRASHED = 1;

export interface CrashLog {
  /** The exit that follows was asked for (SIGTERM, SIGINT): it is logged as a stop, not as a death. */
  stopping(why: string): void;
}

/** Installs the process-wide handlers; once per process (the serve command), never in a library or a test. */
export function logCrashes(log: Logger, proc: NodeJS.Process = process): CrashLog {
  let asked: string | null = null;
  const die = (err: unknown, what: string) => {
    asked = what;
    log.fatal({ err }, `${what}: the server stops`);
    proc.exit(EXIT_CRASHED);
  };
  proc.on('uncaughtException', (err) => die(err, 'uncaught exception'));
  // Registered, so Node does not turn it into an uncaught exception first: the line names what really happened.
  proc.on('unhandledRejection', (reason) => die(reason, 'unhandled promise rejection'));
  proc.on('exit', (code) => {
    if (asked === null) log.error({ code }, `the server process exits (code ${code}) without having been asked to`);
    else if (code === 0) log.info({ why: asked }, 'stopped');
  });
  return {
    stopping: (why) => {
      asked = why;
    },
  };
}
