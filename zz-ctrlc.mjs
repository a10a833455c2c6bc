import net from 'node:net';
import { execa } from 'execa';
const server = net.createServer((s) => { s.on('error', () => {}); onC(); });
let onC = () => {};
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}`;
for (const args of [['status'], ['abort', 'abcdef'], ['push','--volume','home','/tmp']]) {
  const c = new Promise((r) => (onC = r));
  const t0 = Date.now();
  const child = execa('node', ['/work/main/bin/snapferry.js', ...args, '--server', url], { reject: false, timeout: 60000 });
  await c; const t1 = Date.now();
  child.kill('SIGINT'); const r = await child;
  console.log(args[0], 'connect', t1 - t0, 'exit after', Date.now() - t1, r.exitCode, r.stderr.slice(0, 200));
}
process.exit(0);
