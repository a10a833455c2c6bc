/**
 * Where the client keeps things unless told otherwise: its config file, the run lock, the saved digests. The
 * commands' help shows these, so they live in a module that loads nothing, for the command line to register its
 * commands without loading the client (client/cli-options.ts; issue 22).
 */
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_CLIENT_CONFIG = '/etc/snapferry/client.yaml';

/** /run/snapferry/run.lock for root (what the systemd unit runs as); the user's runtime folder otherwise. */
export function defaultLockFile(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return '/run/snapferry/run.lock';
  return path.join(env.XDG_RUNTIME_DIR ?? os.tmpdir(), 'snapferry-run.lock');
}

/** /var/cache/snapferry/digests for root (a timer's `run`), else under the user's cache folder. */
export function defaultDigestCache(env: Record<string, string | undefined> = process.env): string {
  if (process.getuid?.() === 0) return '/var/cache/snapferry/digests';
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'snapferry', 'digests');
}
