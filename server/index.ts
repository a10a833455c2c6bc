/**
 * The server as the command line (bin/) sees it: what `serve`, `client add|list|remove` and `prune-server` call.
 * bin/ imports the server only through this file, never its catalog, layout or other internals, so that the
 * server's modules can change shape behind it.
 */
export { startServer, type RunningServer, type ServeOptions } from './serve.ts';
export { createLogger, type Logger } from './log.ts';
export { startProcessMetrics } from './metrics.ts';
export { logCrashes } from './crash-log.ts';
export { addClient, readTokens, removeClient } from './tokens.ts';
export { checkTokenStdout, openTokenFile } from './token-output.ts';
export {
  DEFAULT_SERVER_CONFIG, findServerConfig, parseListenAddress, PRIVILEGED_FILES_MODES, retentionFor, serveSettings, type ServeFlags,
} from './config.ts';
export type { RetentionLookup } from './retention.ts';
export { describeServerRetention, pruneServerRoot } from './prune-server.ts';
export { startArchiveServer, storeLabel } from './archive/archive-serve.ts';
export { storeSettings } from './archive/store-config.ts';
