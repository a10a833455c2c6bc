/**
 * zstd-napi is a native addon built from source by node-gyp at `npm ci` (allowed by `allowScripts` in
 * package.json). This proves on the machine at hand that the addon was built and loads, and that what it writes is
 * real zstd that the zstd command line reads back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import { execa } from 'execa';
import { ChunkCompressor } from '../../core/wire/index.ts';

const require = createRequire(import.meta.url);

test('the zstd-napi native addon was built on this machine and loads', () => {
  const bindingPath = require.resolve('zstd-napi/binding.js');
  const binding = require(bindingPath) as Record<string, unknown>;
  assert.equal(typeof binding.CCtx, 'function', 'the native binding exposes zstd compression contexts');
  const loaded = Object.keys(require.cache).filter((p) => p.endsWith('.node') && p.includes('zstd-napi'));
  assert.equal(loaded.length, 1, `one native zstd-napi module loaded: ${loaded.join(', ')}`);
});

test('frames compressed by our codec are real zstd: the zstd command decodes them', async (t) => {
  const zstd = await execa('zstd', ['--version'], { reject: false });
  if (zstd.exitCode !== 0) {
    t.skip('the zstd command is not installed (apt-get install zstd; CI installs it)');
    return;
  }
  // Ends in a newline, which execa would strip from what zstd prints unless told not to.
  const raw = Buffer.concat([Buffer.from('snapferry '.repeat(20_000)), crypto.randomBytes(1000), Buffer.from('\n')]);
  const chunk = new ChunkCompressor(3).compress(raw);
  assert.equal(chunk.codec, 'zstd');
  assert.ok(chunk.payload.length < raw.length / 10);
  const { stdout } = await execa('zstd', ['-d', '-c'], { input: chunk.payload, encoding: 'buffer', stripFinalNewline: false });
  assert.deepEqual(Buffer.from(stdout), raw);
});
