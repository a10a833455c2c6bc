/**
 * The server as the command line sees it before any command runs: what `serve`'s and `prune-server`'s options and
 * help need. bin/ imports server/index.ts (hono, @tus/server, the receive path) only in the action of a server
 * command, so that `push` or `--help` never loads the server (issue 22: each module loaded stays in the RSS).
 * Keep to modules that load little: test/deploy/lazy-commands.test.ts checks what a start loads.
 */
export { DEFAULT_SERVER_CONFIG, parseListenAddress, PRIVILEGED_FILES_MODES } from './listen.ts';
