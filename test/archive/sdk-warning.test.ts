// serve in archive mode writes nothing to stderr of its own accord: the AWS SDK's notice that its later releases
// need Node 22 is for whoever updates the lock file (docs/archive.md), not for the operator's log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';

test('making an S3 store prints no NodeVersionSupportWarning', async () => {
  const script = `
    const { s3ObjectStore } = await import('./server/archive/object-store.ts');
    const store = s3ObjectStore({ endpoint: 'http://127.0.0.1:1', bucket: 'b', prefix: '', region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 's' });
    await store.get('x').catch(() => undefined);
  `;
  const env = { ...process.env };
  delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  const { stderr } = await execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, extendEnv: false, timeout: 60_000 });
  assert.doesNotMatch(stderr, /NodeVersionSupportWarning/);
});
