/**
 * A command loads only its own side (issue 22: the whole program in one bundle held 55 MB of RSS in modules a
 * command never used). The built CLI runs with a load hook that records every file of dist/ it loads; each file's
 * source map says which sources and packages it holds. `push` (its action running, up to where it needs a token)
 * loads none of the server, `serve` (its action running, up to the root it refuses) none of the client's work nor the
 * archive mode's S3 client (a btrfs root never needs it), and `--help` neither.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { builtCopy, tempDir } from './package-copy.ts';
import { unreachableServer } from '../fixtures/local-port.ts';

const RECORDER = path.join(import.meta.dirname, 'record-loads.mjs');

/** What a source map's source is: the package it comes from (`node_modules/NAME`), or its path in the checkout. */
function origin(dist: string, root: string, source: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(source);
  return pkg ? `node_modules/${pkg[1]}` : path.relative(root, path.resolve(dist, source));
}

/** The sources and packages in the files of dist/ that `snapferry ...args` loads, and how it ended. */
async function loadedBy(t: { after(fn: () => Promise<void>): void }, root: string, args: string[]): Promise<{ sources: Set<string>; stderr: string }> {
  const log = path.join(await tempDir(t, 'loads'), 'loads');
  const dist = path.join(root, 'dist');
  const run = await execa(process.execPath, ['--import', RECORDER, path.join(dist, 'cli.mjs'), ...args], {
    reject: false,
    // No config file, token or server of this machine's: the command fails in its action, after its imports.
    env: { SNAPFERRY_RECORD_LOADS: log, SNAPFERRY_TOKEN: '', HOME: path.dirname(log) },
    extendEnv: false,
  });
  const files = new Set(
    (await fs.readFile(log, 'utf8')).split('\n').filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u)).filter((f) => path.dirname(f) === dist),
  );
  assert.ok(files.has(path.join(dist, 'cli.mjs')), `the recorder saw the CLI load (stderr: ${run.stderr})`);
  const sources = new Set<string>();
  for (const file of files) {
    const map = JSON.parse(await fs.readFile(`${file}.map`, 'utf8')) as { sources: string[] };
    for (const source of map.sources) sources.add(origin(dist, root, source));
  }
  return { sources, stderr: run.stderr };
}

/** What serve's options and help need at start (server/cli-options.ts and what it imports). */
const SERVER_OPTIONS = new Set(['server/cli-options.ts', 'server/listen.ts']);
const SERVER_WORK = (s: string) => (s.startsWith('server/') && !SERVER_OPTIONS.has(s)) || ['node_modules/hono', 'node_modules/@hono/node-server', 'node_modules/@tus/server', 'node_modules/@tus/file-store', 'node_modules/@tus/s3-store'].includes(s);
const CLIENT_WORK = (s: string) => (s.startsWith('client/') && !CLIENT_OPTIONS.has(s)) || s === 'node_modules/tus-js-client';
/** An archive server's own code (serve with store:, server/archive/archive-serve.ts and the S3 client under it). */
const ARCHIVE_WORK = (s: string) => ['server/archive/archive-serve.ts', 'server/archive/object-store.ts'].includes(s) || /^node_modules\/@(aws-sdk|smithy)\//.test(s);
/** What the client's options and help need at start (client/cli-options.ts and what it imports). */
const CLIENT_OPTIONS = new Set([
  'client/cli-options.ts', 'client/defaults.ts', 'client/exit-codes.ts', 'client/http/token.ts', 'client/push/compress-setting.ts', 'client/upload/rate-limit.ts',
  'client/push/receive-waiting.ts', 'client/progress/format.ts', 'client/progress/math.ts',
]);

test('push loads none of the server, serve none of the client, --help neither side', async (t) => {
  const root = await builtCopy(t);

  const push = await loadedBy(t, root, ['push', '--server', await unreachableServer(), '--volume', 'home', '/nonexistent/snapshots']);
  assert.ok(push.sources.has('client/push/push.ts') && push.sources.has('node_modules/tus-js-client'), `push's action loaded the client (stderr: ${push.stderr})`);
  assert.deepEqual([...push.sources].filter(SERVER_WORK), [], "push loads none of the server's work");

  const serve = await loadedBy(t, root, ['serve', '--root', '/nonexistent/root', '--no-auth']);
  assert.ok(serve.sources.has('server/serve.ts') && serve.sources.has('node_modules/hono'), `serve's action loaded the server (stderr: ${serve.stderr})`);
  assert.deepEqual([...serve.sources].filter(CLIENT_WORK), [], "serve loads none of the client's work");
  assert.deepEqual([...serve.sources].filter(ARCHIVE_WORK), [], 'serve on a btrfs root loads none of the archive mode (its S3 client)');

  // With store: it does (loaded when it starts, from its own chunk), up to the bucket it cannot reach.
  const dir = await tempDir(t, 'archive');
  await fs.writeFile(path.join(dir, 'keys.yaml'), 'accessKeyId: a\nsecretAccessKey: b\n', { mode: 0o600 });
  await fs.writeFile(path.join(dir, 'serve.yaml'), `store:\n  endpoint: http://127.0.0.1:9\n  bucket: none\n  credentials: ${path.join(dir, 'keys.yaml')}\n`);
  const archive = await loadedBy(t, root, ['serve', '--config', path.join(dir, 'serve.yaml'), '--listen', '127.0.0.1:0', '--no-auth']);
  assert.match(archive.stderr, /S3 store http:\/\/127\.0\.0\.1:9 could not be reached/, 'the archive server started and tried its bucket');
  assert.ok([...archive.sources].some(ARCHIVE_WORK), `serve with store: loaded the archive mode (stderr: ${archive.stderr})`);

  for (const command of ['push', 'serve']) {
    const help = await loadedBy(t, root, [command, '--help']);
    assert.deepEqual([...help.sources].filter(SERVER_WORK), [], `${command} --help loads none of the server's work`);
    assert.deepEqual([...help.sources].filter(CLIENT_WORK), [], `${command} --help loads none of the client's work`);
    assert.deepEqual([...help.sources].filter((s) => s.startsWith('node_modules/') && s !== 'node_modules/commander'), [], `${command} --help loads no package but commander`);
  }
});
