/**
 * Before it plans, a push asks the server for the volume's snapshots and for its transfers. It asks both at once: on
 * a line of 600 ms round trips that is one round trip less before every push. A server here holds each of the two
 * answers until the other request has come too (or a second has gone by), then refuses both, each with its own
 * words: a push that asked one after the other waits the second out and is seen to; and the push fails with the
 * snapshot list's refusal, as it did when that came first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { API_PREFIX } from '../../core/protocol/routes.ts';
import { createPair, recordingReporter } from './harness.ts';

const HOLD_MS = 1_000;

interface HoldingServer {
  url: string;
  /** Whether both requests were in the server at once. */
  overlapped(): boolean;
  close(): Promise<void>;
}

async function holdingServer(): Promise<HoldingServer> {
  const held = new Map<string, () => void>();
  let overlapped = false;
  const refuse = (res: http.ServerResponse, what: string) => {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'unauthorized', message: `${what} refused by the test server`, retryable: false } }));
  };
  const server = http.createServer((req, res) => {
    const what = req.url?.startsWith(`${API_PREFIX}/volumes/`) ? 'snapshot list' : req.url?.startsWith(`${API_PREFIX}/transfers`) ? 'transfer list' : null;
    if (what === null) return refuse(res, `${req.method} ${req.url}`);
    const other = [...held.entries()].find(([name]) => name !== what);
    if (other) {
      overlapped = true;
      // The later request's refusal goes first: the push must still say the snapshot list's.
      refuse(res, what);
      return other[1]();
    }
    const timer = setTimeout(() => answer(), HOLD_MS);
    const answer = () => {
      clearTimeout(timer);
      held.delete(what);
      refuse(res, what);
    };
    held.set(what, answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    overlapped: () => overlapped,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

test('a push asks for the snapshot list and the transfer list at once, and fails with the snapshot list\'s refusal', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const s1 = await pair.snapshot('s1');
  const server = await holdingServer();
  t.after(() => server.close());
  await assert.rejects(
    push({ server: server.url, volume: 'home', snapshots: [s1], retries: 0 }, recordingReporter()),
    (err: Error) => {
      assert.match(err.message, /snapshot list refused by the test server/);
      return true;
    },
  );
  assert.equal(server.overlapped(), true, 'the second request came only once the first was answered');
});
