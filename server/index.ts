/**
 * The server as the command line (bin/) sees it: what `serve`, `client add|list|remove` and `prune-server` call.
 * bin/ imports the server only through this file, never its catalog, layout or other internals, so that the
 * server's modules can change shape behind it.
 */
import type { ArchiveServeOptions } from './archive/archive-serve.ts';
import type { ArchiveService } from './archive/archive-service.ts';
import type { RunningServer } from './serve.ts';

export { startServer, type RunningServer, type ServeOptions } from './serve.ts';
export { createLogger, type Logger } from './log.ts';
export { startProcessMetrics } from './metrics.ts';
export { logCrashes } from './crash-log.ts';
export { addClient, readTokens, removeClient } from './tokens.ts';
export { TOKENS_LOOK_MS } from './auth.ts';
export { checkTokenStdout, openTokenFile } from './token-output.ts';
export {
  DEFAULT_SERVER_CONFIG, findServerConfig, parseListenAddress, PRIVILEGED_FILES_MODES, retentionFor, serveSettings, type ServeFlags,
} from './config.ts';
export type { RetentionLookup } from './retention.ts';
export { describeServerRetention, pruneServerRoot } from './prune-server.ts';
export { storeLabel, storeSettings } from './archive/store-config.ts';

/**
 * Starts an archive server (`store:` in the config); its code is loaded only then. The S3 client (@aws-sdk, @smithy)
 * is more than half of the server's bundled code (1.2 of 2.2 MB), and a server on a btrfs root never runs it: loaded
 * at every start, it took 6 MiB of that server's V8 heap (docs/performance.md, issue 22).
 */
export async function startArchiveServer(options: ArchiveServeOptions): Promise<RunningServer<ArchiveService>> {
  const archive = await import('./archive/archive-serve.ts');
  return archive.startArchiveServer(options);
}
