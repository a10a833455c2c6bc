/**
 * The client's config file (`push|status|run --config FILE`, or /etc/snapferry/client.yaml when it exists): the
 * server, the token, the link's limits, and the volumes with where their snapshots come from and live. Flags given
 * on the command line override their keys. deploy/client.example.yaml documents each key; a test loads it.
 */
import { MIN_LIMIT_RATE, MIN_LIMIT_RATE_WHY } from './upload/rate-limit.ts';
import path from 'node:path';
import { z } from 'zod';
import { ValidationError } from '../core/errors.ts';
import { RetentionPolicy } from '../core/retention-policy.ts';
import { configFileToUse, loadConfigFile, type DeepReadonly } from '../core/config-file.ts';
import { parseServerUrl } from '../core/server-url.ts';
import { absolutePathField, durationField, httpUrlField, parsedField, sizeField, timeoutField, volumeNameKey, namedEntries, whenParsed } from '../core/config-fields.ts';
import { sendCompressedModes, type SendCompressedMode } from '../core/btrfs/features.ts';
import { parseCompressSetting, type CompressSetting } from './push/compression.ts';

import { DEFAULT_CLIENT_CONFIG } from './defaults.ts';

export { DEFAULT_CLIENT_CONFIG };

/**
 * What `run` verifies after its push (client/verify/): `off` (the default), `newest` (the newest snapshot both sides
 * hold), or `{ sample: N }`: the newest and N older ones, others each run, so that runs go round all of them.
 * `readData: true` has the server read its copy's every byte again instead of reusing its saved digest.
 */
export const VerifySettingSchema = z.union([
  z.literal('off').transform(() => null),
  z.literal('newest').transform(() => ({ sample: 0, readData: false })),
  z.strictObject({ sample: z.number().int().min(0), readData: z.boolean().default(false) }),
], { error: 'expected off, newest, or { sample: N } (the newest and N older snapshots, others each run)' });
export type VerifySetting = z.output<typeof VerifySettingSchema>;

const VolumeConfigSchema = z.strictObject({
  /** The writable subvolume that `snapshot` and `run` take read-only snapshots of. */
  source: absolutePathField(),
  /** Where its read-only snapshots live (and what `push` sends from). */
  snapshotDir: absolutePathField(),
  /** A snapshot is taken when the newest is older than this (ms); without it, every run takes one. */
  snapshotEvery: durationField().optional(),
  /** Which local snapshots to keep; missing or empty: keep them all. */
  retention: RetentionPolicy.optional(),
  /** This volume's verify after each push in `run`; missing: the top-level `verify`. */
  verify: VerifySettingSchema.optional(),
}).refine((v) => path.resolve(v.snapshotDir) !== path.resolve(v.source), {
  path: ['snapshotDir'],
  // A folder inside source is refused where a snapshot is taken (client/local/take.ts): there it can be told whether
  // the folder is a subvolume of its own (/.snapshots under source /, as snapper has it), which is right.
  message:
    'expected a folder other than source: each snapshot would be taken into the subvolume it is of, beside its ' +
    'files, and every later one would hold an empty folder for each before it; put them beside it, e.g. /.snapshots/NAME',
  when: whenParsed('source', 'snapshotDir'),
});

export const ClientConfigSchema = z.strictObject({
  server: httpUrlField(),
  tokenFile: absolutePathField().optional(),
  caFile: absolutePathField().optional(),
  /** Bytes per second on the wire. */
  limitRate: sizeField({ min: MIN_LIMIT_RATE, perSecond: true, why: MIN_LIMIT_RATE_WHY }).optional(),
  compress: parsedField('auto, none or a zstd level from 1 to 19', (v) =>
    typeof v === 'string' || typeof v === 'number' ? parseCompressSetting(String(v)) : undefined,
  ).optional(),
  sendCompressed: z.enum(sendCompressedModes).optional(),
  /** Retries in a row without progress before a push gives up; missing: forever. */
  retries: z.number().int().min(0).optional(),
  /** A request with no byte moving and no answer for this long is dropped and tried again (ms); missing: 30 s. */
  stallTimeout: timeoutField().optional(),
  /** What `run` verifies after each volume's push (VerifySettingSchema); missing: off. */
  verify: VerifySettingSchema.optional(),
  /**
   * A key file (`snapferry key generate PATH`): every frame is sealed with it before it leaves the client, and a
   * restore opens them with it. Needs an archive server (`store:`); a server that receives into btrfs refuses it.
   */
  encrypt: absolutePathField().optional(),
  /** By volume name (the name on the server). */
  volumes: namedEntries(volumeNameKey(), VolumeConfigSchema).default({}),
});

export type ClientConfig = DeepReadonly<z.output<typeof ClientConfigSchema>>;
export type ClientVolumeConfig = ClientConfig['volumes'][string];

export function loadClientConfig(file: string): Promise<ClientConfig> {
  return loadConfigFile(file, ClientConfigSchema);
}

/** The config given with --config, else /etc/snapferry/client.yaml when it exists, else none. */
export async function findClientConfig(explicit: string | undefined, defaultPath = DEFAULT_CLIENT_CONFIG): Promise<ClientConfig | null> {
  const file = await configFileToUse(explicit, defaultPath);
  return file === null ? null : loadClientConfig(file);
}

/** What `push` or `status` was given on the command line: only the flags a person typed. */
export interface ClientFlags {
  server?: string;
  tokenFile?: string;
  caFile?: string;
  limitRate?: number;
  compress?: CompressSetting;
  sendCompressed?: SendCompressedMode;
  retries?: number;
  stallTimeout?: number;
}

export interface ClientSettings {
  server: string;
  tokenFile?: string;
  caFile?: string;
  limitRate?: number;
  compress: CompressSetting;
  sendCompressed: SendCompressedMode;
  retries?: number;
  stallTimeout?: number;
  /** The key file to seal with (config only: a key is a standing choice, not one push's). */
  encrypt?: string;
}

const CONFIG_HINT = `(--config FILE, or ${DEFAULT_CLIENT_CONFIG})`;

/** Flags over config over defaults. */
export function clientSettings(flags: ClientFlags, config: ClientConfig | null): ClientSettings {
  // The config's value is parsed on load; a flag's here, with the same message.
  const server = flags.server !== undefined ? parseServerUrl(flags.server) : config?.server;
  if (server === undefined) throw new ValidationError(`give --server URL, or a config file with server: ${CONFIG_HINT}`);
  const pick = <K extends 'tokenFile' | 'caFile' | 'limitRate' | 'retries' | 'stallTimeout'>(key: K) => {
    const value = flags[key] ?? config?.[key];
    return value === undefined ? {} : { [key]: value };
  };
  return {
    server,
    compress: flags.compress ?? config?.compress ?? 'auto',
    sendCompressed: flags.sendCompressed ?? config?.sendCompressed ?? 'auto',
    ...pick('tokenFile'),
    ...pick('caFile'),
    ...pick('limitRate'),
    ...pick('retries'),
    ...pick('stallTimeout'),
    ...(config?.encrypt !== undefined ? { encrypt: config.encrypt } : {}),
  };
}

/** One volume's push: the snapshots (or folders of them) to send under that volume's name. */
export interface PushJob {
  volume: string;
  snapshots: string[];
  /** The snapshots are the volume's configured snapshotDir (client/local/snapshots.ts ResolveOptions.snapshotDir). */
  snapshotDir?: boolean;
}

/**
 * The config's volume whose snapshotDir holds every one of `paths` (a snapshot in it, or the folder itself): the
 * volume they are snapshots of, so that `verify --config F SNAPSHOT` needs no --volume the config already says.
 */
function volumeHolding(paths: readonly string[], config: ClientConfig | null): string | undefined {
  if (config === null) return undefined;
  const holds = (dir: string, p: string) => {
    const at = path.resolve(p);
    return at === path.resolve(dir) || path.dirname(at) === path.resolve(dir);
  };
  const found = Object.entries(config.volumes).filter(([, v]) => paths.every((p) => holds(v.snapshotDir, p)));
  return found.length === 1 ? found[0]![0] : undefined;
}

/**
 * What `push` sends. Snapshot paths on the command line go to --volume, as without a config. With none, the
 * config's volumes do: each one's snapshotDir under its name, or only --volume's.
 */
export function pushJobs(snapshots: readonly string[], volume: string | undefined, config: ClientConfig | null): PushJob[] {
  if (snapshots.length > 0) {
    const to = volume ?? volumeHolding(snapshots, config);
    if (to === undefined) {
      throw new ValidationError(
        `give --volume NAME: the volume on the server these snapshots go to${config === null ? '' : " (they are not all in one of the config's snapshotDir folders)"}`,
      );
    }
    return [{ volume: to, snapshots: [...snapshots] }];
  }
  if (config === null) {
    throw new ValidationError(`give the snapshots to push (and --volume NAME), or a config file with volumes ${CONFIG_HINT}`);
  }
  const names = Object.keys(config.volumes);
  if (volume !== undefined) {
    const v = config.volumes[volume];
    if (v === undefined) {
      throw new ValidationError(
        `volume ${volume} is not in the config file: ${names.length > 0 ? `it has ${names.join(', ')}` : 'it has no volumes'}`,
        { details: { volume } },
      );
    }
    return [{ volume, snapshots: [v.snapshotDir], snapshotDir: true }];
  }
  if (names.length === 0) throw new ValidationError('the config file has no volumes: add some under volumes:, or give snapshots to push');
  return names.map((name) => ({ volume: name, snapshots: [config.volumes[name]!.snapshotDir], snapshotDir: true }));
}
