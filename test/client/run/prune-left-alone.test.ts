/**
 * Retention prunes only the names `snapferry snapshot` gives (VOLUME.YYYYMMDDTHHMMSSZ). A dry run says which of the
 * volume's other names it leaves alone, so that a new user's hand-named `home.20261201T0100` does not look overlooked
 * (an explorer's report); a real prune, on a timer, says nothing of them every time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ServerApi } from '../../../client/http/api.ts';
import { listOwnSnapshots } from '../../../client/local/take.ts';
import { pruneLocal } from '../../../client/run/prune.ts';

/** Every ServerApi call goes through request(): any one fails the test, saying which, instead of some TypeError deep in prune. */
class NoServerCall extends ServerApi {
  constructor() {
    super({ server: 'https://no-server.invalid' });
  }

  override request(method: string, path: string): Promise<never> {
    return Promise.reject(new Error(`this test expects no server call, and prune made ${method} ${path}`));
  }
}

test("a dry run names the volume's snapshots whose names retention does not prune; a real one does not", async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-left-alone-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const hand = ['home.20261201T0100', 'home.20261202T0100', 'home.before-upgrade'];
  for (const name of [...hand, 'home.20261203T010000Z', 'home.x.20261203T010000Z', 'work.20261201T0100', 'homework.1']) {
    await fs.mkdir(path.join(dir, name));
  }
  const passedOver = async (at: string) => (await listOwnSnapshots('home', at)).passedOver;
  assert.deepEqual(await passedOver(dir), hand, "ours, another volume's (home.x, work) and a longer name are not");
  assert.deepEqual(await passedOver(path.join(dir, 'missing')), []);

  // No retention set: prune asks the server nothing.
  const api = new NoServerCall();
  const dry = await pruneLocal(api, 'home', { snapshotDir: dir }, { dryRun: true });
  assert.deepEqual(dry.notes, [
    'left alone whatever the retention: home.20261201T0100, home.20261202T0100, home.before-upgrade (retention prunes only the names snapferry snapshot gives, home.YYYYMMDDTHHMMSSZ)',
  ]);
  assert.deepEqual((await pruneLocal(api, 'home', { snapshotDir: dir })).notes, []);
});
