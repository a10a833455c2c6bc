/**
 * The client as the command line sees it before any command runs: what its options' help and parsers need
 * (defaults, limits, the compression setting's parser) and the exit codes. bin/ registers every command with these
 * and imports client/index.ts (uploads, tus-js-client, the push's workers) only in the action of the command that
 * runs, so that `serve` or `--help` never loads the client's work (issue 22: each module loaded stays in the RSS).
 * Keep to modules that load little: test/deploy/lazy-commands.test.ts checks what a start loads.
 */
export { DEFAULT_CLIENT_CONFIG, defaultDigestCache, defaultLockFile } from './defaults.ts';
export { EXIT, exitCodeFor } from './exit-codes.ts';
export { TOKEN_ENV } from './http/token.ts';
export { parseCompressSetting, type CompressSetting } from './push/compress-setting.ts';
export { MIN_LIMIT_RATE, MIN_LIMIT_RATE_WHY } from './upload/rate-limit.ts';
