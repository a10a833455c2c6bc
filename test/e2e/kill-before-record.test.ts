/**
 * The server killed with kill -9 after it acknowledged a stream's end frame but before the catalog on disk said
 * so. The end frame is in the spool, verified and synced, before the PATCH is answered; the catalog's save that moves
 * the transfer to `receiving`, with its final figures, comes a moment later, and its fsync can wait long behind a
 * disk that btrfs receive keeps busy (a snapshot of many small files). Here that save is made to never land
 * (test/fixtures/stall-catalog.mjs) and btrfs receive is held (SIGSTOP), so the kill falls in that window every time.
 *
 * Before the fix the restarted server took the stream for an upload still going on: `status` showed it `uploading`
 * at 97% of its estimate, it was received with no figures on record, and the push said "received s1: 0 B raw in 0 B
 * on the wire", as GET /v1/transfers and the /metrics byte counters did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ServerApi } from '../../client/http/api.ts';
import { formatBytes } from '../../client/progress/format.ts';
import { ServerLayout } from '../../server/layout.ts';
import { readLastRecord } from '../../server/spool/frame-index.ts';
import { assertReceived, createPair, until } from './harness.ts';
import { ChildProcesses, freePort } from './processes.ts';

const STALL_CATALOG = pathToFileURL(path.resolve(import.meta.dirname, '../fixtures/stall-catalog.mjs')).href;

/** The `btrfs receive` that process `parent` started, if one runs. */
async function btrfsReceiveOf(parent: number): Promise<number | undefined> {
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    // pid (comm) state ppid ...: the command's name may hold spaces and parentheses, so read after its last ')'.
    const ppid = stat === null ? NaN : Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== parent) continue;
    const argv = (await fs.readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (path.basename(argv[0] ?? '') === 'btrfs' && argv[1] === 'receive') return Number(name);
  }
  return undefined;
}

/** One sample of the Prometheus text, by its name and client label. */
function sample(metrics: string, name: string): number | undefined {
  const m = new RegExp(`^${name}\\{client="default"\\} (\\S+)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : undefined;
}

test(
  'the server killed with kill -9 once the upload was acknowledged, before the catalog said so: the restart records the whole stream, figures and all, counted once',
  { ...rootOnly, timeout: 180_000 },
  async (t) => {
    const children = new ChildProcesses(t);
    const pair = await createPair(t, { fillMB: 8, seed: 'kill-before-record' });
    const s1 = await pair.snapshot('s1');
    const port = await freePort();
    const first = await children.serve({
      root: pair.root, port,
      env: { NODE_OPTIONS: `--import=${STALL_CATALOG}`, SNAPFERRY_TEST_STALL_CATALOG: '"state": "receiving"' },
    });
    const pushing = children.run(['push', '--server', first.url, '--volume', 'v', '--limit-rate', '4M', s1]);

    // Held as a slow receive of many small files would be: it cannot finish before the kill.
    const receive = await until('btrfs receive to start', () => btrfsReceiveOf(first.pid), 60_000, 5);
    process.kill(receive, 'SIGSTOP');
    await pushing.waitForStderr(/uploaded s1; waiting for the server to receive/, 60_000);

    const layout = new ServerLayout(pair.root);
    const onDisk = JSON.parse(await fs.readFile(layout.catalog, 'utf8')) as { transfers: { id: string; state: string }[] };
    assert.equal(onDisk.transfers.length, 1);
    const id = onDisk.transfers[0]!.id;
    assert.equal(onDisk.transfers[0]!.state, 'uploading', 'the end of the upload is not on record on disk: the window the kill must hit');
    const end = await readLastRecord(layout.frameIndexFile(id));
    assert.equal(end?.kind, 'end', 'the spool holds the verified end frame');

    assert.equal((await first.kill9()).signal, 'SIGKILL');
    // The held receive goes with its server, as it would have by itself once it ran on and found its input closed.
    first.killGroup();
    assert.ok(await first.groupGone(10_000), 'btrfs receive still runs 10 s after the server died');

    // Receives held: what the restart itself made of the transfer, before any receive could change it.
    const server = await pair.startServer({ port, holdReceives: true });
    const api = new ServerApi({ server: server.url });
    const restarted = await api.transfer(id);
    assert.equal(restarted.state, 'receiving', 'the whole stream is no upload in progress (status said `uploading 97%`)');
    assert.deepEqual(
      { wireOffset: restarted.wireOffset, framesVerified: restarted.framesVerified, rawBytes: restarted.rawBytes },
      { wireOffset: end.wireEnd, framesVerified: end.index, rawBytes: end.rawEnd },
      'the spool\'s final figures are on record',
    );

    server.service.resumeReceives();
    const exit = await pushing.exited;
    assert.equal(exit.code, 0, pushing.stderr);
    assert.ok(
      pushing.stderr.includes(`received s1: ${formatBytes(end.rawEnd)} raw in ${formatBytes(end.wireEnd)} on the wire`),
      pushing.stderr,
    );
    const done = await api.transfer(id);
    assert.deepEqual(
      { state: done.state, wireOffset: done.wireOffset, framesVerified: done.framesVerified, rawBytes: done.rawBytes, rawReceived: done.rawReceived },
      { state: 'received', wireOffset: end.wireEnd, framesVerified: end.index, rawBytes: end.rawEnd, rawReceived: end.rawEnd },
    );
    const [snapshot] = (await api.snapshots('v')).snapshots;
    assert.deepEqual({ rawBytes: snapshot?.rawBytes, wireBytes: snapshot?.wireBytes }, { rawBytes: end.rawEnd, wireBytes: end.wireEnd });
    await assertReceived(s1, pair.receivedPath('v', 's1'));

    // Counted once: neither lost to the crash nor counted again for the receive the restart ran.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(sample(metrics, 'snapferry_uploaded_bytes_total'), end.wireEnd, metrics);
    assert.equal(sample(metrics, 'snapferry_received_bytes_total'), end.rawEnd, metrics);
    await until('the spool to be gone', async () => (await fs.readdir(layout.spool)).length === 0 || undefined, 10_000);
  },
);
