/**
 * What the commands share, defined once: commander argument parsers over core's and the client's parsers, the
 * options that several commands take (each builder keeps the words its commands' help has always shown), and a
 * client command's settings (flags over the config file's keys), token and connection.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { describeError } from '../core/errors.ts';
import { parseSize as parseSizeText, parseTimeout as parseTimeoutText } from '../core/units.ts';
import { validateChunkSize } from '../core/wire/chunk-size.ts';
import { DEFAULT_CLIENT_CONFIG, defaultDigestCache, TOKEN_ENV } from '../client/cli-options.ts';
import type { ClientConfig, ClientFlags, ClientSettings, ServerApi } from '../client/index.ts';
import { interruptSignal } from './interrupt.ts';

/** A parser of core/, client/ or server/ as a commander argument parser: its message in commander's words. */
export function asArgument<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError(describeError(err));
    }
  };
}

export const parseSize = asArgument(parseSizeText);

export function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number >= 0');
  return n;
}

/** --stall-timeout, --idle-timeout: the check their config keys get too (core/units.ts). */
export const parseTimeout = asArgument(parseTimeoutText);

/**
 * The options a person typed (or set in the environment), without commander's defaults: a default must not
 * override the config file's key, a typed flag must.
 */
export function givenOptions<T>(cmd: Command): Partial<T> {
  const given = Object.entries(cmd.opts()).filter(([key]) => ['cli', 'env'].includes(cmd.getOptionValueSource(key) ?? ''));
  return Object.fromEntries(given) as Partial<T>;
}

// The client's options. A description that differs between commands is the builder's argument.

/** --config of a client command; `keys`: the keys it reads, when not all of them (then no flag overrides a key). */
export function clientConfigOption(keys?: string): Option {
  return new Option(
    '--config <file>',
    keys === undefined
      ? `the client's config file (YAML; see deploy/client.example.yaml); without --config, ${DEFAULT_CLIENT_CONFIG} when it exists. Flags override its keys`
      : `the client's config file (${keys}); without --config, ${DEFAULT_CLIENT_CONFIG} when it exists`,
  );
}

export function serverOption(description = 'the snapferry server'): Option {
  return new Option('--server <url>', description);
}

/** --token-file; `warn`: say that a token never goes on the command line (the commands people script first). */
export function tokenFileOption(warn = false): Option {
  return new Option('--token-file <file>', `the client's token (or set ${TOKEN_ENV})${warn ? '; never pass a token itself as an argument' : ''}`);
}

export function caFileOption(): Option {
  return new Option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)");
}

export function jsonOption(description = 'print JSON'): Option {
  return new Option('--json', description).default(false);
}

export function dryRunOption(description: string): Option {
  return new Option('--dry-run', description).default(false);
}

/** The frames' own limit, checked as the flag is parsed: out of range, it failed only after the plan, or never when nothing was to be sent. */
const parseChunkSize = asArgument((value: string) => validateChunkSize(parseSizeText(value)));

export function chunkSizeOption(): Option {
  return new Option('--chunk-size <size>', 'raw bytes per frame (64K..16M)').argParser(parseChunkSize);
}

export function retriesOption(): Option {
  return new Option('--retries <n>', 'retries in a row without progress before giving up (default: forever)').argParser(parseCount);
}

export function stallTimeoutOption(description: string): Option {
  return new Option('--stall-timeout <duration>', description).argParser(parseTimeout);
}

/** --digest-cache of `verify` and of `run` (its `verify:` key): where this machine's digests are, whichever verifies. */
export function digestCacheOption(): Option {
  return new Option('--digest-cache <dir>', "where this machine keeps its snapshots' digests, so the next verify reads only what changed").default(defaultDigestCache());
}

// The rest runs in a command's action: client/index.ts is imported then, not when the program starts (bin/cli.ts).

/** The settings of a client command: its flags over the config file's keys. */
export async function settingsOf(cmd: Command, config: ClientConfig | null): Promise<ClientSettings> {
  const { clientSettings } = await import('../client/index.ts');
  return clientSettings(givenOptions<ClientFlags>(cmd), config);
}

/** The Authorization header of the client's token (--token-file, or the environment). */
export async function tokenHeaders(settings: ClientSettings): Promise<Record<string, string>> {
  const { authHeaders, readToken } = await import('../client/index.ts');
  return authHeaders(await readToken({ tokenFile: settings.tokenFile }));
}

/** The server's API for a command that only asks, stopped by Ctrl-C. */
export async function serverApi(settings: ClientSettings): Promise<ServerApi> {
  const headers = await tokenHeaders(settings);
  const { connectToServer } = await import('../client/index.ts');
  return connectToServer({ server: settings.server, signal: interruptSignal(), headers, ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}) });
}
