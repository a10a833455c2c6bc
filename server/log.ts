/**
 * Structured logs (pino): JSON lines on stderr, or text when stderr is a terminal (server/log-pretty.ts). Quiet by default: a line per transfer event, none per request or
 * frame; `--log-level debug` shows more.
 */
import { pino } from 'pino';
import { prettyDestination } from './log-pretty.ts';

export type Logger = pino.Logger;

/** `pretty`: text for a person (server/log-pretty.ts); default when stderr is a terminal, JSON lines otherwise. */
export function createLogger(level: string = process.env.SNAPFERRY_LOG_LEVEL ?? 'info', pretty: boolean = process.stderr.isTTY === true): Logger {
  // Written synchronously: quiet by default, so it costs nothing, and the last line before a crash or an exit nobody
  // asked for (server/crash-log.ts) is never left in a buffer that pino's own exit flush has already passed.
  const destination = pretty ? prettyDestination(2, !('NO_COLOR' in process.env)) : pino.destination({ dest: 2, sync: true });
  return pino({ level, base: { service: 'snapferry-server' } }, destination);
}

/** For tests that do not want to read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
