/**
 * The bench's one table: sections of rows, each row a figure beside its baseline, the ratio between them, and the
 * issue's target for it where there is one. Plain text, columns padded to their widest cell.
 */
export interface Row {
  what: string;
  measured: string;
  baseline: string;
  ratio: string;
  target: string;
}

export interface TableSection {
  title: string;
  rows: Row[];
}

const HEADER: Row = { what: '', measured: 'measured', baseline: 'baseline', ratio: 'ratio', target: 'target' };
const COLUMNS = ['what', 'measured', 'baseline', 'ratio', 'target'] as const;
/** Right-aligned: numbers line up. */
const RIGHT = new Set<keyof Row>(['measured', 'ratio']);

export function renderTable(title: string, sections: readonly TableSection[]): string {
  const rows = sections.flatMap((s) => s.rows);
  const widths = Object.fromEntries(
    COLUMNS.map((c) => [c, Math.max(HEADER[c].length, ...rows.map((r) => r[c].length + (c === 'what' ? 2 : 0)))]),
  ) as Record<keyof Row, number>;
  const line = (r: Row, indent: string): string =>
    COLUMNS.map((c) => {
      const cell = c === 'what' ? indent + r[c] : r[c];
      return RIGHT.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]);
    })
      .join('   ')
      .trimEnd();
  const rule = '-'.repeat(COLUMNS.reduce((total, c) => total + widths[c], 0) + 3 * (COLUMNS.length - 1));
  const out = [title, rule, line(HEADER, '')];
  for (const section of sections) {
    out.push(section.title);
    for (const row of section.rows) out.push(line(row, '  '));
  }
  out.push(rule);
  return out.join('\n');
}

/** A ratio as "0.72×". */
export function times(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '-';
}

/** Decimal megabytes, as the issue counts them. */
export function megabytes(bytes: number): string {
  const mb = bytes / 1e6;
  return `${mb >= 100 ? mb.toFixed(0) : mb.toFixed(1)} MB`;
}

export function rate(mbPerSecond: number): string {
  return `${mbPerSecond.toFixed(1)} MB/s`;
}

export function duration(seconds: number): string {
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** "≤ 1.02×: met" or "≤ 1.02×: MISSED". */
export function verdict(goal: string, met: boolean): string {
  return `${goal}: ${met ? 'met' : 'MISSED'}`;
}
