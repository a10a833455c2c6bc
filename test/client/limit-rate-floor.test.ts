/**
 * --limit-rate below 1k is refused, in the config file and on the command line, with the reason: the server cuts a
 * body that arrives slower than its floor (connections.minBodyRate, 256 B/s by default), so such a push would be
 * cut every few minutes.
 */
import { test } from 'node:test';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { ClientConfigSchema } from '../../client/config.ts';
import { parseConfigText } from '../../core/config-file.ts';
import { SNAPFERRY_BIN } from '../e2e/processes.ts';

// A path sure to be missing: /nonexistent is the home of `nobody`, and a program run as it may make it.
const MISSING = path.join(os.tmpdir(), `snapferry-missing-${process.pid}-${Date.now()}`);

const limitRate = (value: string) => parseConfigText('client.yaml', `server: http://s\nlimitRate: ${value}\n`, ClientConfigSchema).limitRate;

test('limitRate in the config file is at least 1k, and the error says why', () => {
  assert.equal(limitRate('1k'), 1024);
  assert.equal(limitRate('1024'), 1024);
  for (const low of ['1023', '500/s', '256', '1']) {
    assert.throws(() => limitRate(low), /client\.yaml:2: limitRate: expected a rate .*at least 1024 bytes; the server closes an upload .*minBodyRate/, low);
  }
});

test('--limit-rate below 1k is refused before anything runs, and says why', async () => {
  const low = await execa('node', [SNAPFERRY_BIN, 'push', '--limit-rate', '1000', '--server', 'http://127.0.0.1:2', '--volume', 'v', MISSING], { reject: false });
  assert.notEqual(low.exitCode, 0);
  assert.match(low.stderr, /--limit-rate.*'1000' is invalid\. expected at least 1k \(1024 bytes per second\): the server closes an upload .*minBodyRate, 256 B\/s by default/);
  // 1k passes the flag and fails later, on the snapshot path that is not there.
  const ok = await execa('node', [SNAPFERRY_BIN, 'push', '--limit-rate', '1k', '--server', 'http://127.0.0.1:2', '--volume', 'v', MISSING], { reject: false });
  assert.doesNotMatch(ok.stderr, /limit-rate/);
  assert.match(ok.stderr, new RegExp(`${MISSING} is not a directory`));
});
