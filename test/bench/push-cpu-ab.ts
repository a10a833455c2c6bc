/**
 * Client CPU per GB of a real loopback push, builds side by side (issue 22): for ROUNDS rounds, each variant in turn
 * pushes SNAP (default /tmp/ccpu/client/snaps/s1; any read-only snapshot) to a fresh `snapferry serve` of the first
 * build's kind on SERVER's btrfs, and `ssh` runs `btrfs send | ssh 127.0.0.1 btrfs receive` (a private sshd,
 * test/bench/ssh.ts). Client CPU is what bash's `times` counts for the push (node, its threads, both btrfs sends it
 * waited for: the estimate's and the stream's), start-up included; server CPU is serve's and its btrfs receive's.
 * Only figures of the same run compare: other work on the machine moves them by 10-20%.
 *
 *   node --import tsx test/bench/push-cpu-ab.ts ROUNDS COMPRESS VARIANT...
 *     VARIANT: ssh | DIR (holding bin/snapferry.js and dist/, e.g. a copy of a build) | NAME[@COMPRESS]=DIR[:NODE FLAGS]
 *     env: SNAP, SERVER (a btrfs mount; default /tmp/ccpu/server), SERVE_DIR (the build serve runs; default the
 *          first DIR), PUSH_NODE_FLAGS (for every push, e.g. --cpu-prof), PUSH_LOG (a file for each push's output)
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { Cleanup } from './cleanup.ts';
import { startSshd } from './ssh.ts';
import { timedShell, processCpuSeconds, childrenReaped } from './measure.ts';
import { freePort } from '../e2e/processes.ts';
import { removeServerRoot } from './snapferry.ts';
import * as btrfs from '../../core/btrfs/index.ts';

const [rounds, compress, ...variants] = process.argv.slice(2);
const SNAP = process.env.SNAP ?? '/tmp/ccpu/client/snaps/s1';
const SERVER = process.env.SERVER ?? '/tmp/ccpu/server';
const raw = Number((await execa('bash', ['-c', `btrfs send -q ${SNAP} | wc -c`])).stdout);
const cleanup = new Cleanup();
cleanup.installSignalHandlers();
const sshd = variants.includes('ssh') ? await startSshd(cleanup) : null;
const settle = async () => { await execa('sync'); await execa('btrfs', ['subvolume', 'sync', SERVER]); await execa('sync'); };
const results: Record<string, string[]> = {};
const firstDir = variants.map((v) => v.slice(v.indexOf('=') + 1).split(':')[0]!).find((d) => d !== 'ssh') ?? '';
let n = 0;
try {
  for (let r = 0; r < Number(rounds); r++) {
    for (const v of variants) {
      await settle();
      const load = (await execa('cat', ['/proc/loadavg'])).stdout.split(' ')[0];
      // A variant is `ssh`, or DIR (holding bin/snapferry.js), or NAME=DIR:NODE FLAGS
      const [tag, spec] = v.includes('=') ? [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)] : [v === 'ssh' ? v : path.basename(v), v];
      const [dir, flags] = spec.includes(':') ? [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)] : [spec, ''];
      if (v === 'ssh') {
        const into = path.join(SERVER, `ssh-${++n}`);
        await mkdir(into);
        const before = await sshd!.serverCpuSeconds();
        const run = await timedShell(`btrfs send -q "$1" | ssh "\${@:2}"`, [SNAP, ...sshd!.sshArgs(['btrfs', 'receive', '-q', into])]);
        const server = (await sshd!.serverCpuSeconds()) - before;
        await btrfs.deleteSubvolume(path.join(into, path.basename(SNAP)));
        await rm(into, { recursive: true });
        const line = `client ${(run.cpuSeconds / (raw / 1e9)).toFixed(2)} s/GB, server ${(server / (raw / 1e9)).toFixed(2)}, ${run.seconds.toFixed(1)} s, load ${load}`;
        (results[tag] ??= []).push(line);
        console.log(`round ${r} ${tag}: ${line}`);
        continue;
      }
      const root = path.join(SERVER, `root-${++n}`);
      const port = await freePort();
      const serveDir = process.env.SERVE_DIR ?? firstDir;
      const serve = execa('node', [path.join(serveDir, 'bin/snapferry.js'), 'serve', '--root', root, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn', '--no-auth'], { all: true, reject: false });
      cleanup.after(() => { serve.kill('SIGKILL'); });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        serve.all!.on('data', (d) => { out += d; if (/serving/.test(out)) resolve(); });
        void serve.then(() => reject(new Error(out)));
      });
      const s0 = await processCpuSeconds(serve.pid!);
      const extra = `${process.env.PUSH_NODE_FLAGS ?? ''} ${flags}`;
      const run = await timedShell(`node ${extra} "$1" push --server "$2" --volume bench --compress "$3" "$4" 2>&1 | tee "$5" | grep -E 'compression|error|snapferry:' | tail -4 || true`, [path.join(dir, 'bin/snapferry.js'), `http://127.0.0.1:${port}`, tag.includes('@') ? tag.slice(tag.indexOf('@') + 1) : compress!, SNAP, process.env.PUSH_LOG ?? '/dev/null']);
      await childrenReaped(serve.pid!, /^btrfs$/);
      const server = (await processCpuSeconds(serve.pid!)) - s0;
      serve.kill('SIGTERM');
      await serve;
      await removeServerRoot(root);
      const notes = run.stdout.trim().split('\n').map((l) => l.replace(/^note: /, '')).join('; ');
      const line = `client ${(run.cpuSeconds / (raw / 1e9)).toFixed(2)} s/GB, server ${(server / (raw / 1e9)).toFixed(2)}, ${run.seconds.toFixed(1)} s, load ${load} [${notes}]`;
      (results[tag] ??= []).push(line);
      console.log(`round ${r} ${tag}: ${line}`);
    }
  }
} finally {
  await cleanup.run();
}
for (const [k, v] of Object.entries(results)) console.log(k, '\n  ' + v.join('\n  '));
