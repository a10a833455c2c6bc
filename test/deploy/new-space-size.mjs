// Preloaded (`--import`) into a command by young-generation.test.ts: on exit, writes V8's young generation size (both
// semi-spaces, bytes) to stderr. Plain JavaScript: it loads before the command does.
import process from 'node:process';
import v8 from 'node:v8';

process.on('exit', () => {
  const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  process.stderr.write(`new_space ${space?.space_size ?? -1}\n`);
});
