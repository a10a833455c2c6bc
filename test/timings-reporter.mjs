/**
 * A node:test reporter beside TAP for `npm test` (test/run-suite.ts): the time each file's tests took, slowest
 * first. CI must stay inside 30 minutes, and the TAP of many files at a time names no file; this says which files to
 * look at when the suite grows. It sums the files' top-level tests: a file's start and its queueing are left out, as
 * the runner reports a file's events only as it can.
 */

/** The slowest files shown; the rest are summed. */
const SHOWN = 25;

export default async function* timings(source) {
  const files = new Map();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { file, nesting, details } = event.data;
    if (file === undefined || nesting !== 0) continue;
    const seen = files.get(file) ?? { ms: 0, tests: 0 };
    seen.ms += details?.duration_ms ?? 0;
    seen.tests += 1;
    files.set(file, seen);
  }
  const rows = [...files].map(([file, s]) => ({ file, seconds: s.ms / 1000, tests: s.tests }))
    .sort((a, b) => b.seconds - a.seconds);
  const cwd = `${process.cwd()}/`;
  const line = (r) => `#   ${r.seconds.toFixed(0).padStart(5)} s  ${String(r.tests).padStart(3)} tests  ${r.file.replace(cwd, '')}\n`;
  const rest = rows.slice(SHOWN);
  yield `# files by the time their tests took:\n`;
  for (const r of rows.slice(0, SHOWN)) yield line(r);
  if (rest.length > 0) yield `#   ${rest.reduce((s, r) => s + r.seconds, 0).toFixed(0).padStart(5)} s in the other ${rest.length} files\n`;
}
