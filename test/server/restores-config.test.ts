/** The server config's `restores` keys reach serve's options (a btrfs or an archive server's); left out, serve's defaults. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../core/config-file.ts';
import { serveSettings, ServerConfigSchema } from '../../server/config.ts';

const config = (text: string) => parseConfigText('server.yaml', text, ServerConfigSchema);
const STORE = 'store: { endpoint: https://s3.example.net, bucket: backups, region: r }\n';

test('restores keys become serve options, on a btrfs server and on an archive server', () => {
  assert.deepEqual(serveSettings({}, config('root: /srv/a\ntokens: /t.json\nrestores: { perClient: 1, max: 3 }\n')).options.restore, { maxPerClient: 1, maxTotal: 3 });
  assert.deepEqual(serveSettings({}, config('root: /srv/a\ntokens: /t.json\nrestores: { max: 20 }\n')).options.restore, { maxTotal: 20 });
  assert.deepEqual(serveSettings({}, config(`${STORE}tokens: /t.json\nrestores: { perClient: 4 }\n`)).options.restore, { maxPerClient: 4 });
  assert.equal(serveSettings({}, config('root: /srv/a\ntokens: /t.json\nrestores: {}\n')).options.restore, undefined);
  assert.equal(serveSettings({}, config('root: /srv/a\ntokens: /t.json\n')).options.restore, undefined);
});
