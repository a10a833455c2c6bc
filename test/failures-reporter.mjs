/**
 * A node:test reporter beside TAP for `npm test` (test/run-suite.ts): each failed test's file, name and error, and
 * nothing else. The suite prints them again after its last file, so the end of a long log, which is what a CI page
 * shows, says what failed and why, not only which tests passed last.
 */
import { inspect } from 'node:util';

/** At most this many lines of one failure: an assertion's message may carry a command's whole stderr. */
const MAX_LINES = 60;

export default async function* failures(source) {
  for await (const event of source) {
    if (event.type !== 'test:fail' || event.data.skip || event.data.todo) continue;
    const { name, file, details } = event.data;
    // A file's own failure ("test/x.test.ts" failed as a process) carries no more than its tests already said.
    const error = details?.error?.cause ?? details?.error;
    const text = error instanceof Error ? (error.stack ?? error.message) : inspect(error);
    const lines = text.split('\n');
    const shown = lines.length > MAX_LINES ? [...lines.slice(0, MAX_LINES), `… ${lines.length - MAX_LINES} more lines`] : lines;
    yield `✖ ${file ?? '?'}: ${name}\n${shown.map((l) => `    ${l}`).join('\n')}\n\n`;
  }
}
