/**
 * The client as the command line (bin/) sees it: one function per command's work, the config, the views and the
 * exit codes. bin/ imports the client only through this file, so that the folders behind it (push/, restore/,
 * http/, upload/, progress/, local/, run/, status/, verify/) can change shape without touching the commands.
 */
export { clientSettings, DEFAULT_CLIENT_CONFIG, findClientConfig, pushJobs, type ClientConfig, type ClientFlags, type ClientSettings } from './config.ts';
export { EXIT, exitCodeFor } from './exit-codes.ts';
export { authHeaders, readToken, TOKEN_ENV } from './http/token.ts';
export { connectToServer } from './http/connect.ts';
export type { ServerApi } from './http/api.ts';
export { parseCompressSetting, type CompressSetting } from './push/compression.ts';
export { MIN_LIMIT_RATE, MIN_LIMIT_RATE_WHY } from './upload/rate-limit.ts';
export { formatBytes, jsonReporter, textReporter } from './progress/report.ts';
export { push } from './push/push.ts';
export { describePlanned } from './push/plan-view.ts';
export { restore } from './restore/restore.ts';
export { describeRestored } from './restore/done-line.ts';
export { gatherStatus } from './status/data.ts';
export { renderStatus } from './status/view.ts';
export { listSnapshots, renderSnapshots } from './status/snapshots.ts';
export { abortTransfer } from './status/abort.ts';
export { verify } from './verify/verify.ts';
export { jsonView, textView } from './verify/view.ts';
export { defaultDigestCache } from './verify/local-digests.ts';
export { runVolumes, type RunOptions, type Step } from './run/run.ts';
export { defaultLockFile } from './run/lock.ts';
