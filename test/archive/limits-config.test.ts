// An archive server's config takes the same per-client `limits:` as a btrfs server's, and serve hands them to the
// archive (server/config.ts serveSettings); before, an archive server dropped them without a word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadServerConfig, serveSettings } from '../../server/config.ts';

test('limits: in an archive server\'s config reach the archive (quota, open uploads, creation rate); absent, the defaults', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-archive-limits-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const storeYaml = 'store:\n  endpoint: http://127.0.0.1:7480\n  bucket: backups\n';
  const limitsOf = async (text: string) => {
    const file = path.join(dir, 'serve.yaml');
    await fs.writeFile(file, text);
    const settings = serveSettings({ auth: false }, await loadServerConfig(file));
    assert.ok(settings.store !== null);
    return settings.limits;
  };
  assert.deepEqual(
    await limitsOf(`${storeYaml}limits:\n  quota: 1G\n  maxOpenUploads: 3\n  creationsPerMinute: 5\n  creationBurst: 7\n`),
    { quotaBytes: 1024 ** 3, maxOpenUploads: 3, creationsPerMinute: 5, creationBurst: 7 },
  );
  assert.equal(await limitsOf(storeYaml), undefined);
  const example = serveSettings({}, await loadServerConfig(path.resolve(import.meta.dirname, '../../deploy/archive.example.yaml')));
  assert.deepEqual(example.store !== null ? example.limits : null, { quotaBytes: 2 * 1024 ** 4, maxOpenUploads: 8 });
});
