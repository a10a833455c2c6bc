/**
 * An HTTP proxy for tests that passes requests on to a server, bodies streamed both ways, and answers some of them
 * itself with a server error for as long as the test says: a server (or the nginx in front of it) failing for a
 * while, as when its store is down or a record of it cannot be read. It counts the requests it saw by method, so a
 * test can tell a resumed upload (HEAD, PATCH) from one begun again (a second POST).
 *
 *   const faults = await startFaultHttpProxy({ host: '127.0.0.1', port: server.port });
 *   t.after(() => faults.close());
 *   faults.fail({ status: 500, when: (req) => req.method === 'HEAD' }, 3000);   // HEADs answer 500 for 3 s
 *   const held = faults.hold((req) => req.method === 'HEAD');  // the next HEAD waits at the proxy...
 *   await held.arrived;                                          // ...the test changes the server meanwhile...
 *   held.release();                                              // ...and the HEAD goes on
 *
 * The TCP-level faults (rate, cuts) are the chaos proxy's (chaos-proxy.ts); put it in front of this one.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';

export interface Fault {
  status: number;
  /** Which requests the fault answers; the rest pass. */
  when: (req: { method: string; path: string }) => boolean;
  /** The answer's body (default none, as a proxy's bare 502 or a HEAD's); sent with content-type application/json. */
  body?: string;
  /** Extra answer headers (a server's error code header, Retry-After). */
  headers?: Record<string, string>;
}

export interface FaultHttpProxy {
  readonly url: string;
  readonly port: number;
  /** Sends later requests to another server (another instance behind the same proxy, as nginx's next upstream). */
  retarget(next: { host: string; port: number }): void;
  /** Answers matching requests with the fault, from now for `ms` (or until fail(null)). */
  fail(fault: Fault | null, ms?: number): void;
  /**
   * Holds the next request that matches `when` at the proxy, unanswered, until release(): the client has sent it, and
   * the test changes what the server will answer before the server sees it. `arrived` resolves once it is held.
   */
  hold(when: (req: { method: string; path: string }) => boolean): { arrived: Promise<void>; release(): void };
  /**
   * Requests seen, by "METHOD", by "METHOD STATUS [CODE]" for the server's answers (CODE: its error code header) and
   * by "METHOD answered STATUS" for those the fault answered.
   */
  counts(): Record<string, number>;
  close(): Promise<void>;
}

export async function startFaultHttpProxy(first: { host: string; port: number }): Promise<FaultHttpProxy> {
  let target = first;
  let fault: Fault | null = null;
  let until = Infinity;
  const counts: Record<string, number> = {};
  const count = (key: string) => void (counts[key] = (counts[key] ?? 0) + 1);
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true });
  let held: { when: (req: { method: string; path: string }) => boolean; arrived: () => void; released: Promise<void> } | null = null;

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    count(method);
    if (!held?.when({ method, path })) return pass(req, res, method, path);
    const { arrived, released } = held;
    held = null;
    arrived();
    void released.then(() => pass(req, res, method, path));
  });
  const pass = (req: http.IncomingMessage, res: http.ServerResponse, method: string, path: string): void => {
    if (fault && Date.now() >= until) fault = null;
    if (fault?.when({ method, path })) {
      count(`${method} answered ${fault.status}`);
      const body = method === 'HEAD' ? undefined : fault.body;
      res.writeHead(fault.status, { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...fault.headers, connection: 'close' });
      res.end(body);
      // The request's body (a PATCH's frames) is not read: the client sees the answer and the connection closes.
      req.socket.destroySoon();
      return;
    }
    const upstream = http.request({ host: target.host, port: target.port, method, path, headers: req.headers, agent }, (answer) => {
      count(`${method} ${answer.statusCode ?? 502}${answer.headers['snapferry-error-code'] ? ` ${String(answer.headers['snapferry-error-code'])}` : ''}`);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      pipeline(answer, res).catch(() => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    // A cut on the client's side (the chaos proxy in front) ends the request to the server too, as a real cut would.
    req.on('close', () => {
      if (!req.complete) upstream.destroy();
    });
    pipeline(req, upstream).catch(() => upstream.destroy());
  };
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    retarget(next) {
      target = next;
    },
    fail(next, ms) {
      fault = next;
      until = ms === undefined ? Infinity : Date.now() + ms;
    },
    hold(when) {
      let arrived!: () => void;
      let release!: () => void;
      const hold = { arrived: new Promise<void>((resolve) => (arrived = resolve)), released: new Promise<void>((resolve) => (release = resolve)) };
      held = { when, arrived, released: hold.released };
      return { arrived: hold.arrived, release };
    },
    counts: () => ({ ...counts }),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
