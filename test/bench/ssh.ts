/**
 * A private OpenSSH server for the `btrfs send | ssh 127.0.0.1 btrfs receive` baseline: its own host key, client key,
 * authorized_keys and sshd_config in a temp dir, listening on a free loopback port, in the foreground (-D) as a
 * child of the bench, stopped at the end. The system's sshd and ~/.ssh are never used or changed.
 *
 * The listener reaps each connection's processes (privilege separation, session, the remote command), so
 * /proc/LISTENER/stat counts the server side's CPU once a run has ended: see serverCpuSeconds().
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { canConnect, freePort } from '../fixtures/local-port.ts';
import type { Cleanup } from './cleanup.ts';
import { childrenReaped, processCpuSeconds } from './measure.ts';

export const SSHD_BIN = '/usr/sbin/sshd';
export const SSHD_MISSING = `${SSHD_BIN} is missing: install openssh-server (apt-get install -y openssh-server) for the ssh baseline`;
/** sshd refuses to start without its privilege separation directory; Debian's service creates it at boot. */
const PRIVSEP_DIR = '/run/sshd';

export interface RunningSshd {
  port: number;
  pid: number;
  /** argv (after `ssh`) that runs `command` on it as root; each word is quoted for the remote shell. */
  sshArgs(command: readonly string[]): string[];
  /** CPU of the listener and every connection it has finished with. */
  serverCpuSeconds(): Promise<number>;
}

export function sshdAvailable(): boolean {
  return existsSync(SSHD_BIN);
}

export async function startSshd(cleanup: Cleanup): Promise<RunningSshd> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `snapferry-bench-ssh-${process.pid}-`));
  cleanup.after(() => rm(dir, { recursive: true, force: true }));
  const file = (name: string): string => path.join(dir, name);
  if (!existsSync(PRIVSEP_DIR)) {
    await mkdir(PRIVSEP_DIR, { mode: 0o755 });
    cleanup.after(() => rm(PRIVSEP_DIR, { recursive: true, force: true }));
  }
  const keygen = (name: string) => execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `snapferry-bench-${name}`, '-f', file(name)]);
  await keygen('host_key');
  await keygen('client_key');
  await writeFile(file('authorized_keys'), await readFile(file('client_key.pub')));
  await chmod(file('authorized_keys'), 0o600);

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    await writeFile(file('sshd_config'), sshdConfig(dir, port));
    const child = execa(SSHD_BIN, ['-D', '-e', '-f', file('sshd_config')], { reject: false, stdin: 'ignore', all: true, forceKillAfterDelay: 3000 });
    const pid = child.pid;
    if (pid === undefined) throw new Error('could not start sshd');
    const stop = async (): Promise<void> => {
      child.kill('SIGTERM');
      await child;
    };
    cleanup.after(stop);
    if (await listening(child, port)) {
      return {
        port,
        pid,
        sshArgs: (command) => [
          '-F', '/dev/null', '-i', file('client_key'), '-p', String(port),
          '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
          '-o', `UserKnownHostsFile=${file('known_hosts')}`, '-o', 'LogLevel=ERROR',
          'root@127.0.0.1', command.map(shellQuote).join(' '),
        ],
        serverCpuSeconds: async () => {
          if (!(await childrenReaped(pid, /./))) throw new Error('sshd still serves a session after its client ended');
          return processCpuSeconds(pid);
        },
      };
    }
    await stop();
    const output = (await child).all ?? '';
    if (attempt < 3 && /Address already in use/.test(output)) continue;
    throw new Error(`sshd did not start:\n${output}`);
  }
}

function sshdConfig(dir: string, port: number): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The keys live in a temp dir under /tmp (world-writable), which StrictModes would reject.
    'StrictModes no',
    'LogLevel ERROR',
    '',
  ].join('\n');
}

async function listening(child: { exitCode: number | null; signalCode: string | null }, port: number): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    if (await canConnect(port)) return true;
    await sleep(50);
  }
  return false;
}

/** One word for a POSIX shell: ssh hands its command line to the remote user's shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
