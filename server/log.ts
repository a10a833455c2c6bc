/**
 * Structured logs (pino, JSON lines on stderr). Quiet by default: a line per transfer event, none per request or
 * frame; `--log-level debug` shows more.
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string = process.env.SNAPFERRY_LOG_LEVEL ?? 'info'): Logger {
  // Written synchronously: quiet by default, so it costs nothing, and the last line before a crash or an exit nobody
  // asked for (server/crash-log.ts) is never left in a buffer that pino's own exit flush has already passed.
  return pino({ level, base: { service: 'snapferry-server' } }, pino.destination({ dest: 2, sync: true }));
}

/** For tests that do not want to read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
