/**
 * What nginx with TLS costs beyond plain http, without btrfs, hashing or a spool in the way: the client's own HTTP
 * stack (client/http/transport.ts, tus-js-client's node stack, client/upload/patch-body.ts) sends PATCH bodies of
 * 16 MiB, as a push does, either straight to a sink over http or through nginx running a site file (the committed
 * nginx/snapferry.conf, or a variant of it) with TLS. The sink is a plain node:http server in a child process that
 * reads each body and counts the reads it took. Rounds alternate between the routes, so a busy machine skews each
 * the same; every figure is CPU seconds per GiB of body from the kernel's accounting, per process.
 *
 *   node --import tsx test/bench/tls-proxy-cpu.ts [GiB=1] [rounds=3] direct nginx=nginx/snapferry.conf nginx=/tmp/b.conf
 *
 * PIECE_KIB sets the bodies' piece size (default BODY_PIECE, what a push writes before it has measured the link;
 * on a fast link it writes up to LARGEST_BODY_PIECE).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createTransport, type Transport } from '../../client/http/transport.ts';
import { BODY_PIECE, patchBody } from '../../client/upload/patch-body.ts';
import { startNginx } from '../fixtures/nginx.ts';
import { createTestCertificates } from '../fixtures/tls.ts';
import { Cleanup } from './cleanup.ts';
import { childrenOf, processCpuSeconds } from './measure.ts';

const GiB = 1024 ** 3;
const PATCH = 16 * 1024 * 1024;
const FRAME = 4 * 1024 * 1024;
const PIECE = pieceBytes(process.env.PIECE_KIB);

function pieceBytes(kib: string | undefined): number {
  if (kib === undefined || kib === '') return BODY_PIECE;
  const n = Number(kib);
  if (!Number.isInteger(n) || n < 1) throw new Error(`PIECE_KIB must be a whole number of KiB, 1 or more (e.g. PIECE_KIB=256), not ${JSON.stringify(kib)}`);
  return n * 1024;
}

/** A positional argument as a number above 0 (`whole`: an integer too), or its default; anything else is refused. */
function positiveArg(arg: string | undefined, name: string, fallback: number, whole: boolean): number {
  if (arg === undefined) return fallback;
  const n = Number(arg);
  if (!Number.isFinite(n) || n <= 0 || (whole && !Number.isInteger(n))) {
    throw new Error(`${name} must be ${whole ? 'a whole number' : 'a number'} above 0 (usage: tls-proxy-cpu.ts [GIB] [ROUNDS] [ROUTE...]), not ${JSON.stringify(arg)}`);
  }
  return n;
}

const [gibArg, roundsArg, ...routeArgs] = process.argv.slice(2);
const total = positiveArg(gibArg, 'GIB', 1, false) * GiB;
const rounds = positiveArg(roundsArg, 'ROUNDS', 3, true);
const routes = (routeArgs.length > 0 ? routeArgs : ['direct', 'nginx=nginx/snapferry.conf']).map((arg) => {
  const [kind, site] = arg.split('=');
  if (kind === 'direct') return { name: 'direct', site: null };
  if (kind === 'nginx' && site) return { name: `nginx ${path.basename(site)}`, site: path.resolve(site) };
  throw new Error(`route: direct or nginx=SITE_FILE, not ${arg}`);
});

/** The sink: reads each body whole, answers 204 with how many bytes and reads it took. */
const SINK = `
const http = require('node:http');
let connections = 0;
const server = http.createServer({ keepAliveTimeout: 65000 }, (req, res) => {
  let bytes = 0, reads = 0;
  req.on('data', (c) => { bytes += c.length; reads++; });
  req.on('end', () => { res.writeHead(204, { 'x-bytes': bytes, 'x-reads': reads, 'x-connections': connections }); res.end(); });
});
server.on('connection', () => connections++);
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

const cleanup = new Cleanup();
cleanup.installSignalHandlers();
try {
  const sink = spawn(process.execPath, ['-e', SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.after(() => void sink.kill());
  const sinkPort = Number(await new Promise<string>((resolve) => sink.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))));
  const certs = await createTestCertificates(cleanup);
  const frames = Array.from({ length: PATCH / FRAME }, () => randomBytes(FRAME));

  const started = await Promise.all(
    routes.map(async (r) => {
      if (r.site === null) return { ...r, url: `http://127.0.0.1:${sinkPort}/sink`, workers: async () => [] as number[] };
      const nginx = await startNginx(cleanup, { upstream: { host: '127.0.0.1', port: sinkPort }, cert: certs.serverCert, key: certs.serverKey, site: r.site });
      const master = Number((await readFile(path.join(nginx.prefix, 'nginx.pid'), 'utf8')).trim());
      return { ...r, url: `${nginx.url}/sink`, workers: () => childrenOf(master) };
    }),
  );

  const sinkCpu = () => processCpuSeconds(sink.pid!);
  process.stdout.write(`${(total / GiB).toFixed(2)} GiB per run in PATCHes of ${PATCH / 1024 / 1024} MiB; CPU s/GiB per process\n`);
  process.stdout.write('round  route                          wall s   client  nginx   sink   both sides  sink reads/PATCH  new upstream connections\n');
  for (let round = 1; round <= rounds; round++) {
    for (const r of started) {
      const transport: Transport = createTransport(r.url, r.site === null ? {} : { caFile: certs.caCert });
      const workers = await r.workers();
      const nginxCpu = async () => (await Promise.all(workers.map(processCpuSeconds))).reduce((a, b) => a + b, 0);
      const before = { client: process.cpuUsage(), nginx: await nginxCpu(), sink: await sinkCpu(), t: performance.now() };
      let reads = 0;
      let connections = [0, 0];
      const patches = Math.round(total / PATCH);
      for (let i = 0; i < patches; i++) {
        const req = transport.httpStack.createRequest('PATCH', r.url);
        const answer = req.send(patchBody(frames, undefined, PIECE));
        if (round === 1 && i === 0 && r.site !== null) {
          // The socket goes back to the agent's pool once the answer ended: ask while the answer is in.
          (req.getUnderlyingObject() as ClientRequest).once('response', (m: IncomingMessage) => {
            const socket = m.socket as TLSSocket;
            process.stdout.write(`       ${r.name}: ${socket.getProtocol()} ${socket.getCipher().name}\n`);
          });
        }
        const res = await answer;
        if (res.getStatus() !== 204) throw new Error(`${r.name}: PATCH answered ${res.getStatus()}`);
        if (Number(res.getHeader('x-bytes')) !== PATCH) throw new Error(`${r.name}: the sink read ${res.getHeader('x-bytes')} bytes`);
        reads += Number(res.getHeader('x-reads'));
        const seen = Number(res.getHeader('x-connections'));
        connections = [i === 0 ? seen : connections[0]!, seen];
      }
      const seconds = (performance.now() - before.t) / 1000;
      const used = process.cpuUsage(before.client);
      const gib = (patches * PATCH) / GiB;
      const client = (used.user + used.system) / 1e6 / gib;
      const nginx = ((await nginxCpu()) - before.nginx) / gib;
      const sinkS = ((await sinkCpu()) - before.sink) / gib;
      await transport.close();
      process.stdout.write(
        `${String(round).padStart(5)}  ${r.name.padEnd(30)} ${seconds.toFixed(2).padStart(6)}  ${client.toFixed(2).padStart(6)}  ${nginx.toFixed(2).padStart(5)}  ${sinkS.toFixed(2).padStart(5)}  ${(client + nginx + sinkS).toFixed(2).padStart(10)}  ${(reads / patches).toFixed(0).padStart(16)}  ${connections[1]! - connections[0]!}\n`,
      );
    }
  }
} finally {
  await cleanup.run();
}
