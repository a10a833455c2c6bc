/**
 * Where the server listens and which config file it reads by default, and the modes of --privileged-files: what
 * `serve`'s options and help need, in a module of their own that loads nothing else, so that the command line can
 * register `serve` without loading the server (server/cli-options.ts; issue 22).
 */
import { ValidationError } from '../core/errors.ts';
import type { PrivilegedFiles } from './replication.ts';

export const DEFAULT_SERVER_CONFIG = '/etc/snapferry/server.yaml';
export const DEFAULT_LISTEN = Object.freeze({ host: '127.0.0.1', port: 8080 });
export const PRIVILEGED_FILES_MODES = ['allow', 'inert-mount', 'refuse'] as const satisfies readonly PrivilegedFiles[];

export interface ListenAddress {
  host: string;
  port: number;
}

/** "HOST:PORT", "[::1]:PORT" or ":PORT" (loopback); throws ValidationError. */
export function parseListenAddress(value: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new ValidationError(`expected HOST:PORT, e.g. 127.0.0.1:8080, got ${JSON.stringify(value)}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}
