/**
 * A node:test reporter for mutation runs: the first failing test decides the mutant is killed, so the process exits
 * then instead of running the rest (node 20 has no --test-bail). Prints nothing else: Stryker reads the exit code.
 */
export default async function* bail(source) {
  for await (const event of source) {
    if (event.type === 'test:fail' && !event.data.skip && !event.data.todo) {
      yield `not ok: ${event.data.name}\n`;
      process.exit(1);
    }
  }
}
