/** The server config's `connections` keys reach serve's options under their own names; left out, serve's defaults. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../core/config-file.ts';
import { serveSettings, ServerConfigSchema } from '../../server/config.ts';

const config = (text: string) => parseConfigText('server.yaml', text, ServerConfigSchema);

test('connections keys become serve options', () => {
  const c = config('root: /srv/a\ntokens: /t.json\nconnections:\n  max: 300\n  perClient: 8\n  headersTimeout: 15s\n  minBodyRate: 1k\n  bodyRateWindow: 3m\n');
  assert.deepEqual(serveSettings({}, c).options.connections, {
    maxConnections: 300, maxPerClient: 8, headersTimeoutMs: 15_000, minBodyBytesPerSecond: 1024, bodyRateWindowMs: 180_000,
  });
  assert.deepEqual(serveSettings({}, config('root: /srv/a\ntokens: /t.json\nconnections: { perClient: 2 }\n')).options.connections, { maxPerClient: 2 });
  assert.equal(serveSettings({}, config('root: /srv/a\ntokens: /t.json\nconnections: {}\n')).options.connections, undefined);
  assert.equal(serveSettings({}, config('root: /srv/a\ntokens: /t.json\n')).options.connections, undefined);
});
