/**
 * snapferry's version, as package.json says: what `--version` prints (bin/conventions.ts reads the same file) and what
 * the server reports in GET /v1/status and /metrics. The bundle inlines it, so the installed program needs no file.
 */
import pkg from '../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;
