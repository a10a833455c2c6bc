/**
 * The server's log for a person at a terminal: `HH:MM:SS LEVEL message key=value …`, with an error's stack below
 * it, instead of JSON lines with numeric levels and epoch times (which a journal or a log shipper wants, and gets
 * whenever stderr is not a terminal). pino-pretty would do this as a transport, but pino transports start a worker
 * from a file of their own, which cannot run from the dist/ bundle (packaging/build.mjs); this is a plain pino
 * destination instead, written synchronously like the JSON one (server/log.ts).
 */
import fs from 'node:fs';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLOURS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
/** Said once at start (the `service` of every JSON line), or carried by the line itself. */
const OMITTED = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname', 'err']);

/** `key=value`: strings bare unless they hold spaces or quotes, everything else as JSON. */
function field(key: string, value: unknown): string {
  const text = typeof value === 'string' && /^[^\s"=]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
  return `${key}=${text}`;
}

/** One JSON log line as text for people; a line that is not JSON is passed on as it is. */
export function prettyLine(line: string, colour: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const name = (LEVELS[level] ?? String(level)).padEnd(5);
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 19) : '--:--:--';
  const fields = Object.entries(entry).filter(([k]) => !OMITTED.has(k)).map(([k, v]) => field(k, v));
  const err = entry.err as { message?: string; stack?: string } | undefined;
  const stack = err?.stack ?? err?.message;
  const head = `${time} ${colour ? `\x1b[${COLOURS[level] ?? '0'}m${name}\x1b[0m` : name} ${String(entry.msg ?? '')}`;
  return `${[head, ...fields].join('  ')}\n${stack ? `${stack.replace(/^/gm, '    ')}\n` : ''}`;
}

/** A pino destination (anything with write) that writes each line, made readable, to `fd` at once. */
export function prettyDestination(fd = 2, colour = true): { write(line: string): void } {
  return { write: (line) => fs.writeSync(fd, prettyLine(line.replace(/\n$/, ''), colour)) };
}
