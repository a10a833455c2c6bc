/**
 * Structured logs (pino, JSON lines on stderr). Quiet by default: a line per transfer event, none per request or
 * frame; `--log-level debug` shows more.
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string = process.env.SNAPFERRY_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'snapferry-server' } }, pino.destination(2));
}

/** For tests that do not want to read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
