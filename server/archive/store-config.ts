/**
 * `store:` in the server's config (docs/archive.md): the S3 bucket an archive server keeps its streams in, parsed at
 * the boundary like every other key of server/config.ts, and its credentials, read when the server starts from a file
 * of their own (0600, apart from the config, which is often world-readable) or from the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, as every S3 tool reads them). Never both, never in the config itself.
 */
import fs from 'node:fs/promises';
import { z } from 'zod';
import { loadConfigFile } from '../../core/config-file.ts';
import { absolutePathField, httpUrlField } from '../../core/config-fields.ts';
import { parseHttpUrl } from '../../core/server-url.ts';
import { SnapferryError } from '../../core/errors.ts';

/** S3's bucket naming rules (lowercase letters, digits, dots and hyphens, 3 to 63), which RGW and AWS both apply. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** Folders of names of the alphabet of core/names.ts, no empty or dot components: keys are built under it. */
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9._@:+-]*(\/[A-Za-z0-9][A-Za-z0-9._@:+-]*)*$/;

export const StoreConfigSchema = z.strictObject({
  /** The S3 endpoint, e.g. https://s3.eu-central-1.amazonaws.com or http://127.0.0.1:7480 (path-style addressing). */
  // Reached by the AWS SDK over node:http, which blocks no port: fetch's bad ports are no mistake here.
  endpoint: httpUrlField(parseHttpUrl),
  bucket: z.string().regex(BUCKET, { message: 'expected an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens' }),
  prefix: z.string().regex(PREFIX, { message: 'expected folder names joined by /, e.g. snapferry or backups/office, without a leading or trailing /' }).optional(),
  region: z.string().min(1).optional(),
  /** A YAML file with accessKeyId and secretAccessKey; without it, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. */
  credentials: absolutePathField().optional(),
  /**
   * How long an instance killed mid-upload keeps the upload from the others (server/archive/lease.ts), in seconds.
   * Shorter: a takeover sooner, but a holder that cannot reach the bucket for a third of it loses its upload.
   */
  leaseSeconds: z.number().int().min(3).max(3600).optional(),
});
export type StoreConfig = Readonly<z.output<typeof StoreConfigSchema>>;

const CredentialsSchema = z.strictObject({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) });
export type StoreCredentials = z.output<typeof CredentialsSchema>;

/** The bucket and the keys to reach it: what server/archive/archive-serve.ts opens. */
export interface StoreSettings {
  endpoint: string;
  bucket: string;
  prefix: string;
  region: string;
  credentials: StoreCredentials;
  /** The lease on an upload (server/archive/lease.ts), ms; default ARCHIVE_LEASE_MS. */
  leaseMs?: number;
}

export async function storeSettings(config: StoreConfig, env: NodeJS.ProcessEnv = process.env): Promise<StoreSettings> {
  return {
    endpoint: config.endpoint, bucket: config.bucket, prefix: config.prefix ?? '', region: config.region ?? 'us-east-1',
    credentials: await credentialsOf(config, env),
    ...(config.leaseSeconds !== undefined ? { leaseMs: config.leaseSeconds * 1000 } : {}),
  };
}

async function credentialsOf(config: StoreConfig, env: NodeJS.ProcessEnv): Promise<StoreCredentials> {
  const fromEnv = env.AWS_ACCESS_KEY_ID !== undefined || env.AWS_SECRET_ACCESS_KEY !== undefined;
  if (config.credentials !== undefined) {
    if (fromEnv) {
      throw new SnapferryError('store_credentials_ambiguous', 'store.credentials names a file and AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is set too: keep one, so that which keys are used is never a guess', {
        details: { file: config.credentials },
      });
    }
    // Keys a backup server holds for its bucket: a file others may read is refused, as a key file is.
    const mode = (await fs.stat(config.credentials).catch(() => null))?.mode;
    if (mode !== undefined && (mode & 0o077) !== 0) {
      throw new SnapferryError('store_credentials_open', `${config.credentials} may be read by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`, {
        details: { file: config.credentials },
      });
    }
    return { ...(await loadConfigFile(config.credentials, CredentialsSchema)) };
  }
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new SnapferryError('store_credentials_missing', 'store: needs the bucket\'s keys: credentials: FILE (a YAML file with accessKeyId and secretAccessKey, mode 600), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment', {
      details: { missing: !accessKeyId ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY' },
    });
  }
  return { accessKeyId, secretAccessKey };
}

/** How serve names the archive it runs on (its start line, the service's log). */
export function storeLabel(store: StoreSettings): string {
  return `s3://${store.bucket}${store.prefix === '' ? '' : `/${store.prefix}`} at ${store.endpoint}`;
}
