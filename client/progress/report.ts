/**
 * What a push tells its user, as events; the CLI picks text for people or JSON lines for scripts (docs/design.md, "Conventions" 12).
 * Both views get the same events and the same figures; they differ only in form and in how often progress shows:
 * a terminal line redrawn up to 4 times a second, a log line every 30 s, a JSON event at most once a second. The
 * last figures of an upload always show, whatever the rate, and so do the figures before a note.
 */
import type { Transfer } from '../../core/protocol.ts';
import { formatBytes, formatProgress } from './format.ts';
import { StatusLine } from './line.ts';
import { Every } from './math.ts';
import type { ProgressFigures } from './figures.ts';

export { formatBytes };

export interface Reporter {
  note(message: string): void;
  startTransfer(snapshot: string, parent: string | null): void;
  progress(figures: ProgressFigures): void;
  waiting(snapshot: string): void;
  received(snapshot: string, transfer: Transfer): void;
  /** The push is over (done or failed): leave the terminal clean for whatever prints next. */
  close?(): void;
}

export const TERMINAL_EVERY_MS = 250;
export const LOG_EVERY_MS = 30_000;
export const JSON_EVERY_MS = 1000;

export interface TextReporterOptions {
  /** Where the text goes, newlines included; default stderr. */
  write?: (text: string) => void;
  /** One line rewritten in place; default: whether stderr is a terminal. */
  terminal?: boolean;
  /** The terminal's width. */
  columns?: () => number;
  /** Milliseconds, any origin. */
  now?: () => number;
  /** Between progress lines when not on a terminal. */
  logEveryMs?: number;
}

/** Text on stderr: a status line on a terminal; otherwise plain lines, progress every 30 s so logs stay short. */
export function textReporter(options: TextReporterOptions = {}): Reporter {
  const write = options.write ?? ((text: string) => void process.stderr.write(text));
  const now = options.now ?? (() => performance.now());
  const terminal = options.terminal ?? process.stderr.isTTY === true;
  const line = terminal ? new StatusLine(write, options.columns ?? (() => process.stderr.columns || 80)) : null;
  const every = new Every(terminal ? TERMINAL_EVERY_MS : (options.logEveryMs ?? LOG_EVERY_MS));
  let unshown: ProgressFigures | null = null;

  const print = (message: string) => (line ? line.print(message) : write(`${message}\n`));
  const show = (figures: ProgressFigures) => {
    unshown = null;
    if (line) line.show(formatProgress(figures));
    else write(`  ${formatProgress(figures)}\n`);
  };
  return {
    // Figures held back by the pace come first: a note (a cut, a download done) never hides the progress before it.
    note: (m) => {
      if (unshown) show(unshown);
      print(`note: ${m}`);
    },
    startTransfer: (s, p) => {
      line?.commit();
      unshown = null;
      // A log's first progress line comes a period after the start, not at once: short pushes stay one line each.
      every.restart(line ? undefined : now());
      print(p ? `sending ${s} (incremental from ${p})` : `sending ${s} (full)`);
    },
    progress: (figures) => {
      if (every.pass(now())) show(figures);
      else unshown = figures;
    },
    waiting: (s) => {
      if (unshown) show(unshown);
      line?.commit();
      print(`  uploaded ${s}; waiting for the server to receive and check it`);
    },
    received: (s, t) =>
      print(
        `received ${s}: ${formatBytes(t.rawBytes)} raw in ${formatBytes(t.wireOffset)} on the wire` +
          (t.interruptions > 0 ? `, resumed after ${t.interruptions} interruption(s)` : ''),
      ),
    close: () => line?.clear(),
  };
}

export interface JsonReporterOptions {
  now?: () => number;
  everyMs?: number;
}

/** JSON lines on stdout, one event each; progress carries every figure as a number (null when unknown). */
export function jsonReporter(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`), options: JsonReporterOptions = {}): Reporter {
  const now = options.now ?? (() => performance.now());
  const every = new Every(options.everyMs ?? JSON_EVERY_MS);
  let unshown: ProgressFigures | null = null;
  const emit = (event: string, data: object) => write(JSON.stringify({ event, at: new Date().toISOString(), ...data }));
  const show = (figures: ProgressFigures) => {
    unshown = null;
    emit('progress', figures);
  };
  return {
    note: (message) => {
      if (unshown) show(unshown);
      emit('note', { message });
    },
    startTransfer: (snapshot, parent) => {
      unshown = null;
      every.restart();
      emit('start', { snapshot, parent });
    },
    progress: (figures) => {
      if (every.pass(now())) show(figures);
      else unshown = figures;
    },
    waiting: (snapshot) => {
      if (unshown) show(unshown);
      emit('uploaded', { snapshot });
    },
    received: (snapshot, transfer) => emit('received', { snapshot, transfer }),
  };
}
