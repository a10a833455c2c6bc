/**
 * What `snapferry verify` prints: for people, one line per identical snapshot and one per difference; for scripts
 * (--json), one JSON line per event with the same figures (STYLE.md 12).
 */
import type { DifferenceKind, EntryRecord, TreeDifference } from '../../core/tree-digest/types.ts';
import { formatBytes } from '../progress/format.ts';
import { formatDuration } from '../progress/math.ts';
import { StatusLine } from '../progress/line.ts';
import { Every } from '../progress/math.ts';
import type { VerifyEvents, VerifyOutcome } from './check.ts';
import type { VerifyFigures } from './progress.ts';

export interface VerifyView extends VerifyEvents {
  outcome(outcome: VerifyOutcome): void;
  close(): void;
}

export function onTheLine(o: VerifyOutcome): number {
  return o.line.sent + o.line.received;
}

/** `verified: NAME identical (N entries, X GiB; Y KiB on the line)`, or a header and one line per difference. */
export function describeOutcome(o: VerifyOutcome): string[] {
  const line = `${formatBytes(onTheLine(o))} on the line`;
  if (o.equal) return [`verified: ${o.snapshot} identical (${o.entries} entries, ${formatBytes(Number(o.bytes))}; ${line})`];
  const count = `${o.differences.length}${o.truncated ? '+' : ''}`;
  return [
    `DIFFERS: ${o.snapshot}: the server's copy differs from ${o.path} in ${count} path(s) (${line}):`,
    ...o.differences.map((d) => `  ${d.path === '' ? '(top)' : d.path}: ${describeDifference(d)}`),
    ...(o.truncated ? [`  ... and more (the first ${o.differences.length} are listed)`] : []),
  ];
}

export function describeDifference(d: TreeDifference): string {
  return d.differs.map((k) => describeKind(k, d.local, d.remote)).join('; ');
}

function describeKind(kind: DifferenceKind, here: EntryRecord | null, there: EntryRecord | null): string {
  const both = (what: string, f: (r: EntryRecord) => string | null) => `${what} ${here ? (f(here) ?? 'none') : '?'} here, ${there ? (f(there) ?? 'none') : '?'} on the server`;
  switch (kind) {
    case 'missing':
      return `missing on the server (a ${here?.kind ?? 'path'} here)`;
    case 'extra':
      return `extra on the server (a ${there?.kind ?? 'path'} there, nothing here)`;
    case 'kind':
      return both('kind', (r) => r.kind);
    case 'content':
      return 'content differs';
    case 'size':
      return both('size', (r) => r.size);
    case 'mode':
      return both('mode', (r) => r.mode.toString(8).padStart(4, '0'));
    case 'owner':
      return both('owner', (r) => `${r.uid}:${r.gid}`);
    case 'mtime':
      return both('mtime', (r) => r.mtime);
    case 'xattrs':
      return 'xattrs differ';
    case 'target':
      return both('symlink target', (r) => r.target);
    case 'rdev':
      return both('device', (r) => r.rdev);
    case 'link':
      return both('hard link of', (r) => r.link);
  }
}

function formatFigures(f: VerifyFigures): string {
  const side = (s: VerifyFigures['local']) => (s.total === null ? formatBytes(s.bytes) : `${formatBytes(s.bytes)} / ${formatBytes(s.total)}`) + (s.done ? ' done' : '');
  const parts = [f.snapshot, `here ${side(f.local)}`, `server ${side(f.server)}`];
  if (f.bytesPerSecond !== null) parts.push(`${formatBytes(f.bytesPerSecond)}/s`);
  if (f.etaSeconds !== null) parts.push(`ETA ${formatDuration(f.etaSeconds)}`);
  return parts.join('  ');
}

/** Text on stderr (a redrawn status line on a terminal, a line every 30 s in a log); results on stdout. */
export function textView(options: { write?: (text: string) => void; out?: (text: string) => void; terminal?: boolean } = {}): VerifyView {
  const write = options.write ?? ((t: string) => void process.stderr.write(t));
  const out = options.out ?? ((t: string) => void process.stdout.write(t));
  const terminal = options.terminal ?? process.stderr.isTTY === true;
  const line = terminal ? new StatusLine(write, () => process.stderr.columns || 80) : null;
  const every = new Every(terminal ? 250 : 30_000, terminal ? Number.NEGATIVE_INFINITY : performance.now());
  return {
    note: (m) => (line ? line.print(`note: ${m}`) : write(`note: ${m}\n`)),
    progress: (f) => {
      if (!every.pass(performance.now())) return;
      if (line) line.show(formatFigures(f));
      else write(`  ${formatFigures(f)}\n`);
    },
    outcome: (o) => {
      line?.clear();
      out(`${describeOutcome(o).join('\n')}\n`);
    },
    close: () => line?.clear(),
  };
}

/** JSON lines on stdout: `progress` at most once a second, `note`, and one `verified` or `differs` per snapshot. */
export function jsonView(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): VerifyView {
  const every = new Every(1000);
  const emit = (event: string, data: object) => write(JSON.stringify({ event, at: new Date().toISOString(), ...data }));
  return {
    note: (message) => emit('note', { message }),
    progress: (figures) => {
      if (every.pass(performance.now())) emit('progress', figures);
    },
    outcome: (o) => emit(o.equal ? 'verified' : 'differs', { ...o, lineBytes: onTheLine(o) }),
    close: () => undefined,
  };
}
