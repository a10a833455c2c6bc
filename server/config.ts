/**
 * The server's config file (`snapferry serve --config FILE`, or /etc/snapferry/server.yaml when it exists), and how
 * it meets the command line: every flag given overrides its key, every key left out takes the flag's default.
 * The example in deploy/server.example.yaml documents each key; a test loads it.
 */
import { z } from 'zod';
import { ValidationError } from '../core/errors.ts';
import { isSafeName, NAME_RULE } from '../core/names.ts';
import { RetentionPolicy } from '../core/retention-policy.ts';
import { configFileToUse, loadConfigFile, type DeepReadonly } from '../core/config-file.ts';
import { absolutePathField, durationField, namedEntries, parsedField, sizeField, timeoutField, whenParsed } from '../core/config-fields.ts';
import { assertOpenAccessAllowed } from './auth.ts';
import { parsePublicUrl } from './public-url.ts';
import { StoreConfigSchema, type StoreConfig } from './archive/store-config.ts';
import { DEFAULT_CHAIN_RULES, type ChainRules } from './archive/chains.ts';
import type { PrivilegedFiles } from './replication.ts';
import type { ConnectionSettings, HttpOptions, ServeOptions } from './serve.ts';

import { DEFAULT_LISTEN, DEFAULT_SERVER_CONFIG, parseListenAddress, PRIVILEGED_FILES_MODES, type ListenAddress } from './listen.ts';

export { DEFAULT_LISTEN, DEFAULT_SERVER_CONFIG, parseListenAddress, PRIVILEGED_FILES_MODES, type ListenAddress };
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** "CLIENT/VOLUME", as the server lays volumes out (ROOT/volumes/CLIENT/VOLUME). */
function isVolumeKey(key: string): boolean {
  const parts = key.split('/');
  return parts.length === 2 && parts.every(isSafeName);
}

export const ServerConfigSchema = z.strictObject({
  /** On btrfs: spool, catalog and received snapshots. An archive server (store:) has none. */
  root: absolutePathField().optional(),
  /** Archive mode (docs/archive.md): verified streams kept in this S3 bucket, nothing received into btrfs. */
  store: StoreConfigSchema.optional(),
  /** Archive mode's chains (server/archive/chains.ts): after so many incrementals or days, the next push is a full. */
  archive: z
    .strictObject({
      fullEvery: z.strictObject({ incrementals: z.number().int().min(1).optional(), days: z.number().positive().optional() }).optional(),
    })
    .optional(),
  listen: parsedField('HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080', (v) => (typeof v === 'string' ? parseListenAddress(v) : undefined)).optional(),
  behindProxy: z.boolean().optional(),
  /** Where clients reach the server (server/public-url.ts); without it, upload URLs use the request's host[:port]. */
  publicUrl: parsedField('an absolute http(s) URL without query or fragment, e.g. https://backup.example.org or https://example.org/snapferry', (v) =>
    typeof v === 'string' ? parsePublicUrl(v) : undefined).optional(),
  tls: z.strictObject({ cert: absolutePathField(), key: absolutePathField() }).optional(),
  /** The tokens file (`snapferry client add NAME --tokens FILE`). */
  tokens: absolutePathField().optional(),
  logLevel: z.enum(LOG_LEVELS).optional(),
  limits: z
    .strictObject({
      /** Bytes that one client's uploads may hold in the spool together (failed transfers' kept spools included). */
      quota: sizeField({ min: 1 }).optional(),
      /** Uploads of one client open, or holding a spool, at once. */
      maxOpenUploads: z.number().int().min(1).optional(),
      /** New uploads one client may create per minute once its burst is spent, and that burst (429 beyond). */
      creationsPerMinute: z.number().int().min(1).optional(),
      creationBurst: z.number().int().min(1).optional(),
    })
    .optional(),
  /** Transfers that are over are forgotten by the catalog this long after they ended, and past the newest maxPerClient. */
  endedTransfers: z
    .strictObject({
      // A push whose last answer was lost looks its transfer up again minutes later: never forget one sooner.
      keepFor: durationField().refine((ms) => ms >= 3_600_000, { message: 'expected at least 1h' }).optional(),
      maxPerClient: z.number().int().min(1).optional(),
    })
    .optional(),
  /** Abandoned uploads (no PATCH for this long) are deleted; "0s" never. */
  expireAfter: durationField().optional(),
  /** An upload's request body that brings no byte for this long is ended (its frames kept, its lock freed). */
  idleTimeout: timeoutField().optional(),
  privilegedFiles: z.enum(PRIVILEGED_FILES_MODES).optional(),
  /** Connection caps and request pacing (server/connection-limits.ts, server/slow-bodies.ts); defaults in ServeOptions. */
  connections: z
    .strictObject({
      /** Sockets open at once in total: 503 beyond. */
      max: z.number().int().min(1).optional(),
      /** Connections one token holds at once (busy or kept alive): 429 beyond. */
      perClient: z.number().int().min(1).optional(),
      /** A request's headers must have arrived within this. */
      headersTimeout: timeoutField().optional(),
      /** A request body slower than this, averaged over bodyRateWindow, is ended (its verified frames kept). */
      minBodyRate: sizeField({ min: 1, perSecond: true }).optional(),
      bodyRateWindow: timeoutField().optional(),
    })
    .optional(),
  /** Restore streams at once (server/restore-slots.ts), each a btrfs send and a frame or two of memory; 429 beyond. */
  restores: z
    .strictObject({
      /** Streams one token has at once. */
      perClient: z.number().int().min(1).optional(),
      /** Streams the server sends at once in all. */
      max: z.number().int().min(1).optional(),
    })
    .optional(),
  /** The default policy of every received volume; an empty or missing one prunes nothing. */
  retention: RetentionPolicy.optional(),
  /** Per "CLIENT/VOLUME": a `retention` that replaces the default one as a whole. */
  volumes: namedEntries(
    z.string().refine(isVolumeKey, { message: `expected CLIENT/VOLUME, each a name of ${NAME_RULE}` }),
    z.strictObject({ retention: RetentionPolicy.optional() }),
  ).default({}),
})
  // Reported beside any other problem of the file (`when`): a config with neither is as wrong as a bad value.
  .refine((c) => c.root !== undefined || c.store !== undefined, {
    path: ['root'], message: 'expected root (an absolute path on btrfs) or store (an S3 bucket: archive mode)',
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  })
  .refine((c) => c.archive === undefined || c.store !== undefined, {
    path: ['archive'], message: 'expected archive: only with store: (its chains are an archive server\'s); remove it or add store:',
    when: whenParsed('archive', 'store'),
  })
  .refine((c) => c.root === undefined || c.store === undefined, {
    path: ['root'], message: 'expected no root with store: (an archive server receives nothing into btrfs); keep one of them',
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  });

export type ServerConfig = DeepReadonly<z.output<typeof ServerConfigSchema>>;

export function loadServerConfig(file: string): Promise<ServerConfig> {
  return loadConfigFile(file, ServerConfigSchema);
}

/** The config given with --config, else /etc/snapferry/server.yaml when it exists, else none. */
export async function findServerConfig(explicit: string | undefined, defaultPath = DEFAULT_SERVER_CONFIG): Promise<ServerConfig | null> {
  const file = await configFileToUse(explicit, defaultPath);
  return file === null ? null : loadServerConfig(file);
}

/** The retention policy of one received volume: its own from `volumes`, else the default, else keep everything. */
export function retentionFor(config: ServerConfig | null, client: string, volume: string): RetentionPolicy {
  return { ...(config?.volumes[`${client}/${volume}`]?.retention ?? config?.retention ?? {}) };
}

/** What `serve` was given on the command line: only the flags a person typed, never commander's defaults. */
export interface ServeFlags {
  root?: string;
  listen?: ListenAddress;
  behindProxy?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tokens?: string;
  /** false for --no-auth. */
  auth?: boolean;
  logLevel?: string;
  privilegedFiles?: PrivilegedFiles;
  expireAfterMs?: number;
  idleTimeoutMs?: number;
}

/** A btrfs server's settings (store: null), or an archive server's (its bucket; no root, nothing of btrfs). */
export type ServeSettings =
  | { logLevel: string; store: null; options: Omit<ServeOptions, 'log'> }
  | { logLevel: string; store: StoreConfig; chains: ChainRules; limits?: ServeOptions['limits']; keepEndedMs?: number; options: Omit<HttpOptions, 'log'> };

const CONFIG_HINT = `(--config FILE, or ${DEFAULT_SERVER_CONFIG})`;

/** Flags over config over defaults, checked as a whole: serve stays secure by default whichever way it was set. */
export function serveSettings(flags: ServeFlags, config: ServerConfig | null): ServeSettings {
  const root = flags.root ?? config?.root;
  const store = config?.store;
  if (root !== undefined && store !== undefined) throw new ValidationError('--root goes with a btrfs server; this config has store: (an archive server, which has no root)');
  if (root === undefined && store === undefined) throw new ValidationError(`serve needs --root DIR, or a config file with root or store ${CONFIG_HINT}`);
  const { host, port } = flags.listen ?? config?.listen ?? DEFAULT_LISTEN;
  const behindProxy = flags.behindProxy ?? config?.behindProxy ?? false;
  const logLevel = flags.logLevel ?? config?.logLevel ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ValidationError(`--log-level ${logLevel} is not a level: use one of ${LOG_LEVELS.join(', ')}`);
  }
  const expireAfterMs = flags.expireAfterMs ?? config?.expireAfter;
  const privilegedFiles = flags.privilegedFiles ?? config?.privilegedFiles;
  const idleTimeoutMs = flags.idleTimeoutMs ?? config?.idleTimeout;
  const limits = uploadLimitsOf(config);
  const endedTransfers = endedTransfersOf(config);
  const connections = connectionSettings(config);
  const restore = restoreLimitsOf(config);
  const tls = tlsOf(flags, config);
  const tokensFile = tokensOf(flags, config, host, behindProxy);
  const http = {
      host, port, behindProxy,
      ...(config?.publicUrl !== undefined ? { publicUrl: config.publicUrl } : {}),
      ...(tokensFile !== undefined ? { tokensFile } : {}),
      ...(tls ? { tls } : {}),
      ...(expireAfterMs !== undefined ? { expireAfterMs } : {}),
      ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
      ...(connections ? { connections } : {}),
      ...(restore ? { restore } : {}),
  };
  if (store !== undefined) {
    const every = config?.archive?.fullEvery;
    const chains = {
      fullEveryIncrementals: every?.incrementals ?? DEFAULT_CHAIN_RULES.fullEveryIncrementals,
      fullEveryDays: every?.days ?? DEFAULT_CHAIN_RULES.fullEveryDays,
    };
    // limits: the same per-client limits, counted in the bucket (server/archive/client-uploads.ts).
    // endedTransfers.keepFor: how long an ended upload's tombstone stays (server/archive/upload-sweep.ts).
    const keepEndedMs = endedTransfers?.keepForMs;
    return { logLevel, store, chains, ...(limits !== undefined ? { limits } : {}), ...(keepEndedMs !== undefined ? { keepEndedMs } : {}), options: http };
  }
  return {
    logLevel, store: null,
    options: {
      ...http, root: root!,
      ...(privilegedFiles !== undefined ? { privilegedFiles } : {}),
      ...(limits !== undefined ? { limits } : {}),
      ...(endedTransfers !== undefined ? { endedTransfers } : {}),
    },
  };
}

/** The config's per-client upload limits as the server takes them, only those it sets; undefined for none. */
function uploadLimitsOf(config: ServerConfig | null): ServeOptions['limits'] {
  const { quota, ...rest } = config?.limits ?? {};
  const given = Object.fromEntries(Object.entries({ quotaBytes: quota, ...rest }).filter(([, v]) => v !== undefined));
  return Object.keys(given).length > 0 ? given : undefined;
}

function endedTransfersOf(config: ServerConfig | null): ServeOptions['endedTransfers'] {
  const { keepFor, maxPerClient } = config?.endedTransfers ?? {};
  if (keepFor === undefined && maxPerClient === undefined) return undefined;
  return { ...(keepFor !== undefined ? { keepForMs: keepFor } : {}), ...(maxPerClient !== undefined ? { maxPerClient } : {}) };
}

/** The config's `connections` keys as ServeOptions names them; undefined when none is given. */
function connectionSettings(config: ServerConfig | null): ConnectionSettings | undefined {
  const c = config?.connections;
  if (!c) return undefined;
  const out: ConnectionSettings = {
    ...(c.max !== undefined ? { maxConnections: c.max } : {}),
    ...(c.perClient !== undefined ? { maxPerClient: c.perClient } : {}),
    ...(c.headersTimeout !== undefined ? { headersTimeoutMs: c.headersTimeout } : {}),
    ...(c.minBodyRate !== undefined ? { minBodyBytesPerSecond: c.minBodyRate } : {}),
    ...(c.bodyRateWindow !== undefined ? { bodyRateWindowMs: c.bodyRateWindow } : {}),
  };
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The config's `restores` keys as ServeOptions names them; undefined when none is given. */
function restoreLimitsOf(config: ServerConfig | null): ServeOptions['restore'] {
  const r = config?.restores;
  if (r?.perClient === undefined && r?.max === undefined) return undefined;
  return { ...(r.perClient !== undefined ? { maxPerClient: r.perClient } : {}), ...(r.max !== undefined ? { maxTotal: r.max } : {}) };
}

function tlsOf(flags: ServeFlags, config: ServerConfig | null): { cert: string; key: string } | undefined {
  if (flags.tlsCert === undefined && flags.tlsKey === undefined) return config?.tls ? { ...config.tls } : undefined;
  if (flags.tlsCert === undefined || flags.tlsKey === undefined) throw new ValidationError('--tls-cert and --tls-key go together');
  return { cert: flags.tlsCert, key: flags.tlsKey };
}

/** Tokens (flag, else config), or an explicit --no-auth, which wins over a config's tokens and needs loopback. */
function tokensOf(flags: ServeFlags, config: ServerConfig | null, host: string, behindProxy: boolean): string | undefined {
  if (flags.auth === false) {
    if (flags.tokens !== undefined) throw new ValidationError('give --tokens FILE or --no-auth, not both');
    assertOpenAccessAllowed(host, behindProxy);
    return undefined;
  }
  const tokens = flags.tokens ?? config?.tokens;
  if (tokens === undefined) {
    throw new ValidationError(
      `serve needs --tokens FILE or tokens: in its config file ${CONFIG_HINT} (create it with ` +
        '`snapferry client add NAME --tokens FILE`), or --no-auth to let anyone who can connect push, which is allowed ' +
        'on a loopback address only',
    );
  }
  return tokens;
}
