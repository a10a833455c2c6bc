// The conventions of a Unix command, through the command as a user runs it: --version, usage errors exit 2 with a
// pointer to the command's help, help that fits 80 columns. No server and no root needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { EXIT } from '../../client/exit-codes.ts';
import { unreachableServer } from '../fixtures/local-port.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/snapferry.js');
const snapferry = (args: string[]) => execa('node', [BIN, ...args], { reject: false, timeout: 60_000 });
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('--version prints package.json\'s version, from bin/ and from the dist/ bundle, run from any folder', async () => {
  for (const args of [['--version'], ['-V']]) {
    const r = await snapferry(args);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, VERSION);
  }
  // `npm run test:one` builds dist/ first; the installed command runs it with plain node from anywhere.
  const dist = await execa('node', [path.join(ROOT, 'dist/cli.mjs'), '--version'], { cwd: '/', reject: false });
  assert.equal(dist.exitCode, 0, dist.stderr);
  assert.equal(dist.stdout, VERSION);
});

test("every usage error exits 2 with commander's message and the command's --help to read", async () => {
  const cases: { args: string[]; message: RegExp; help: string }[] = [
    { args: ['--frobnicate'], message: /unknown option '--frobnicate'/, help: 'snapferry --help' },
    { args: ['push', '--frobnicate'], message: /unknown option '--frobnicate'/, help: 'snapferry push --help' },
    { args: ['pusj'], message: /unknown command 'pusj'/, help: 'snapferry --help' },
    { args: ['client', 'add', 'laptop'], message: /required option '--tokens <file>' not specified/, help: 'snapferry client add --help' },
    { args: ['abort'], message: /missing required argument 'id'/, help: 'snapferry abort --help' },
    { args: ['push', '--chunk-size', 'lots'], message: /argument 'lots' is invalid/, help: 'snapferry push --help' },
    { args: ['push', '--send-compressed', 'maybe'], message: /argument 'maybe' is invalid/, help: 'snapferry push --help' },
  ];
  for (const { args, message, help } of cases) {
    const r = await snapferry(args);
    assert.equal(r.exitCode, EXIT.usage, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.ok(r.stderr.includes(`(see \`${help}\`)`), r.stderr);
    // The message, not the whole help after it.
    assert.ok(r.stderr.split('\n').length <= 3, r.stderr);
  }
  const bare = await snapferry([]);
  assert.equal(bare.exitCode, EXIT.usage);
  assert.match(bare.stderr, /Usage: snapferry/);
});

test('help fits 80 columns for every command, and --listen shows its default as HOST:PORT', async () => {
  const commands = [[], ['client']];
  const listed = (await snapferry(['--help'])).stdout;
  const names = [...listed.slice(listed.indexOf('Commands:')).matchAll(/^ {2}([a-z-]+)\s/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
  assert.ok(names.includes('push') && names.includes('serve') && names.length >= 10, listed);
  for (const name of names) commands.push([name]);
  for (const sub of ['add', 'list', 'remove']) commands.push(['client', sub]);
  for (const cmd of commands) {
    const r = await snapferry([...cmd, '--help']);
    assert.equal(r.exitCode, 0, r.stderr);
    const wide = r.stdout.split('\n').filter((line) => line.length > 80);
    assert.deepEqual(wide, [], `snapferry ${cmd.join(' ')} --help`);
  }
  const serve = await snapferry(['serve', '--help']);
  assert.match(serve.stdout, /--listen <host:port> +address to listen on \(default: 127\.0\.0\.1:8080\)/);
});

test('a --chunk-size outside 64K..16M (0 included) is a usage error at parse time, for push and restore alike', async () => {
  // Bad paths and an unreachable server behind it: the value must be refused before any of them is looked at.
  const commands = [['push', '--server', await unreachableServer(), '--volume', 'v', '/nonexistent'], ['restore', '--server', await unreachableServer(), '--volume', 'v', 's', '/nonexistent']];
  for (const command of commands) {
    for (const size of ['0', '1', '65535', '17M', '1G']) {
      const r = await snapferry([...command, '--chunk-size', size]);
      assert.equal(r.exitCode, EXIT.usage, `${command[0]} --chunk-size ${size}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`argument '${size}' is invalid\\. chunk size must be .*64K\\.\\.16M`), r.stderr);
      assert.ok(r.stderr.includes(`(see \`snapferry ${command[0]} --help\`)`), r.stderr);
    }
  }
});

test("run takes --digest-cache as verify does (run's verify: digests there): the same option, help and default", async () => {
  // The option's help, from its line to the next option's (help wraps it over several lines).
  const help = async (command: string) => {
    const r = await snapferry([command, '--help']);
    assert.equal(r.exitCode, 0, r.stderr);
    return /^ {2}--digest-cache <dir>[^]*?(?=^ {2}-)/m.exec(r.stdout)?.[0] ?? `no --digest-cache in ${command} --help`;
  };
  assert.equal(await help('run'), await help('verify'));
  assert.match(await help('run'), /where this machine keeps its snapshots' digests/);
});
