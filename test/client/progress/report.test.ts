// The text and JSON views of a push's events, on a fake clock: a terminal line redrawn in place (checked on a
// small terminal emulator), log lines every 30 s, JSON events at most once a second, and the same figures in each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonReporter, textReporter } from '../../../client/progress/report.ts';
import type { ProgressFigures } from '../../../client/progress/figures.ts';
import { formatProgress } from '../../../client/progress/format.ts';

const MiB = 1024 * 1024;

/** What a terminal shows after `text`: "\r" to column 0, "\n" to a new line, CSI K clears to the end of the line. */
function screen(text: string, columns = 200): string[] {
  const lines: string[] = [''];
  let col = 0;
  for (let i = 0; i < text.length; i++) {
    const row = lines.length - 1;
    if (text.startsWith('\x1b[K', i)) {
      lines[row] = lines[row]!.slice(0, col);
      i += 2;
    } else if (text[i] === '\r') col = 0;
    else if (text[i] === '\n') {
      lines.push('');
      col = 0;
    } else {
      assert.ok(col < columns, `line ${row} wrapped at column ${columns}: ${lines[row]}`);
      const line = lines[row]!.padEnd(col);
      lines[row] = line.slice(0, col) + text[i] + line.slice(col + 1);
      col++;
    }
  }
  return lines;
}

function figures(rawBytes: number, more: Partial<ProgressFigures> = {}): ProgressFigures {
  return {
    snapshot: 'home.20261125', direction: 'upload', rawBytes, wireBytes: Math.round(rawBytes / 2), wireBytesBefore: 0, rawTotal: 100 * MiB, rawTotalExact: false,
    rawBytesPerSecond: 2 * MiB, wireBytesPerSecond: MiB, ratio: 2, etaSeconds: (100 * MiB - rawBytes) / (2 * MiB), ...more,
  };
}

test('the progress line reads as the issue shows it, and leaves out what is unknown', () => {
  const line = formatProgress({
    snapshot: 'home.20261125', direction: 'upload', rawBytes: 412.3 * MiB, wireBytes: 180.2 * MiB, wireBytesBefore: 0, rawTotal: 1.6 * 1024 * MiB, rawTotalExact: false,
    rawBytesPerSecond: 4.3 * MiB, wireBytesPerSecond: 1.9 * MiB, ratio: 2.288, etaSeconds: 632,
  });
  assert.equal(line, 'home.20261125  412.3 MiB / ~1.6 GiB raw  (25%)  180.2 MiB sent  2.29x  1.9 MiB/s  ETA 10m32s');
  assert.equal(
    formatProgress({ snapshot: 's', direction: 'upload', rawBytes: 0, wireBytes: 0, wireBytesBefore: 0, rawTotal: null, rawTotalExact: false, rawBytesPerSecond: null, wireBytesPerSecond: null, ratio: null, etaSeconds: null }),
    's  0 B raw (size unknown)  0 B sent',
  );
  assert.match(formatProgress(figures(100 * MiB, { rawTotalExact: true })), / 100.0 MiB \/ 100.0 MiB raw {2}\(100%\)/);
});

test('after a resume, only what this run moved reads as sent or downloaded; what was there before is shown apart', () => {
  const resumed = figures(80 * MiB, { wireBytes: 40 * MiB, wireBytesBefore: 16 * MiB, rawTotalExact: true, rawTotal: 80 * MiB });
  assert.match(formatProgress(resumed), / {2}24\.0 MiB sent \(\+16\.0 MiB from an earlier run\) {2}2\.00x /);
  assert.match(formatProgress({ ...resumed, direction: 'download' }), / {2}24\.0 MiB downloaded \(\+16\.0 MiB from an earlier run\) /);
});

test('on a terminal: one line redrawn at most 4 times a second, notes above it, the final figures kept', () => {
  let out = '';
  let now = 0;
  const report = textReporter({ terminal: true, write: (s) => (out += s), now: () => now, columns: () => 120 });
  report.startTransfer('home.20261125', null);
  let redraws = 0;
  for (let t = 0; t <= 2_000; t += 50) {
    now = t;
    const before = out.length;
    report.progress(figures(t * 10_000));
    if (out.length > before) redraws++;
    if (t === 1_000) report.note('the link dropped; resuming from the server offset');
  }
  assert.ok(redraws >= 8 && redraws <= 9, `${redraws} redraws in 2 s`);
  now = 2_010;
  report.progress(figures(99 * MiB));
  report.waiting('home.20261125');
  const shown = screen(out);
  assert.deepEqual(shown.slice(0, 2), ['sending home.20261125 (full)', 'note: the link dropped; resuming from the server offset']);
  assert.match(shown[2]!, /^home\.20261125 {2}99\.0 MiB \/ ~100\.0 MiB raw {2}\(99%\) {2}49\.5 MiB sent {2}2\.00x {2}1\.0 MiB\/s {2}ETA 1s$/);
  assert.equal(shown[3], '  uploaded home.20261125; waiting for the server to receive and check it');
  // A line longer than the terminal is cut, never wrapped (a wrapped line cannot be redrawn in place).
  out = '';
  const narrow = textReporter({ terminal: true, write: (s) => (out += s), now: () => 0, columns: () => 40 });
  narrow.progress(figures(MiB));
  narrow.close?.();
  assert.deepEqual(screen(out, 40), [''], 'close() leaves the terminal clean');
});

test('not on a terminal: a plain progress line every 30 s, and the last figures at the end of the upload', () => {
  const lines: string[] = [];
  let now = 0;
  const report = textReporter({ terminal: false, write: (s) => lines.push(s), now: () => now });
  report.startTransfer('s1', 's0');
  for (let t = 0; t <= 65_000; t += 500) {
    now = t;
    report.progress(figures(t * 1000));
  }
  report.waiting('s1');
  assert.equal(lines[0], 'sending s1 (incremental from s0)\n');
  const progress = lines.filter((l) => l.startsWith('  home'));
  assert.equal(progress.length, 3, lines.join(''));
  assert.ok(progress.every((l) => !l.includes('\r') && !l.includes('\x1b') && l.endsWith('\n')));
  assert.ok(progress[0]!.includes('28.6 MiB'), progress[0]); // at 30 s, not at once
  assert.ok(progress[2]!.includes('62.0 MiB'), progress[2]); // the final figures, flushed by waiting()
});

test('a download (restore) says what came down, and a note shows the figures held back before it', () => {
  assert.match(formatProgress(figures(100 * MiB, { direction: 'download', rawTotalExact: true })), / 50\.0 MiB downloaded /);
  const lines: string[] = [];
  let now = 0;
  const report = textReporter({ terminal: false, write: (s) => lines.push(s), now: () => now });
  // A restore: a note says it begins, progress comes as frames verify, a note says the download is done.
  report.note('restoring home.20261125 into /mnt/restore (full)');
  for (let t = 0; t <= 12_000; t += 500) {
    now = t;
    report.progress(figures(Math.min(100 * MiB, t * 10_000), { direction: 'download' }));
  }
  report.note('home.20261125: downloaded and verified 100.0 MiB; receiving it');
  const progress = lines.filter((l) => l.startsWith('  home'));
  assert.ok(progress.length >= 1 && progress.length <= 2, lines.join(''));
  assert.match(progress.at(-1)!, / 100\.0 MiB \/ ~100\.0 MiB raw {2}\(100%\) {2}50\.0 MiB downloaded/);
  assert.ok(lines.indexOf(progress.at(-1)!) === lines.length - 2, `the last figures come right before the note:\n${lines.join('')}`);
});

test('--json: progress at most once a second with every figure as a number or null, plus the other events', () => {
  const lines: string[] = [];
  let now = 0;
  const report = jsonReporter((l) => lines.push(l), { now: () => now });
  report.startTransfer('s1', null);
  for (let t = 0; t <= 3_000; t += 100) {
    now = t;
    report.progress(figures(t * 1000, t < 2_000 ? { etaSeconds: null, rawBytesPerSecond: null, wireBytesPerSecond: null } : {}));
  }
  report.note('hello');
  now = 3_050;
  report.progress(figures(3_050_000));
  report.waiting('s1');
  const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(events.map((e) => e.event), ['start', 'progress', 'progress', 'progress', 'progress', 'note', 'progress', 'uploaded']);
  const progress = events.filter((e) => e.event === 'progress');
  for (const e of progress) {
    for (const key of ['rawBytes', 'wireBytes', 'rawTotal', 'rawBytesPerSecond', 'wireBytesPerSecond', 'ratio', 'etaSeconds']) {
      assert.ok(key in e && (typeof e[key] === 'number' || e[key] === null), `${key}: ${String(e[key])}`);
    }
  }
  assert.equal(progress[0]!.etaSeconds, null);
  assert.equal(typeof progress[3]!.etaSeconds, 'number');
  assert.equal(progress.at(-1)!.rawBytes, 3_050_000, 'the final figures are flushed before "uploaded"');
  // The text view says the same of the same figures.
  const { event: _event, at: _at, ...figuresBack } = progress.at(-1)!;
  assert.equal(formatProgress(figuresBack as unknown as ProgressFigures), formatProgress(figures(3_050_000)));
});
