/**
 * The server's JSON API for a command that only asks (status, snapshots, abort): one transport that takes the
 * route and trust the user gave (proxy, --ca-file), the same as a push's or a restore's.
 */
import { ServerApi } from './api.ts';
import { createTransport } from './transport.ts';

export interface ConnectOptions {
  server: string;
  caFile?: string;
  signal: AbortSignal;
  headers: Record<string, string>;
}

export function connectToServer(options: ConnectOptions): ServerApi {
  const transport = createTransport(options.server, options.caFile !== undefined ? { caFile: options.caFile } : {});
  return new ServerApi({ server: options.server, transport, signal: options.signal, headers: options.headers });
}
