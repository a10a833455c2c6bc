/**
 * The value types that config files of both sides share, as zod schemas that parse what a person writes ("500G",
 * "7d") into what the code uses (bytes, ms). Each failure message starts with "expected ...": the loader
 * (core/config-file.ts) adds the key, the line and what was found.
 */
import path from 'node:path';
import { z } from 'zod';
import { isSafeName, NAME_RULE } from './names.ts';
import { parseServerUrl } from './server-url.ts';
import { MAX_VOLUME_LENGTH, VOLUME_LENGTH_RULE } from './snapshot-name.ts';
import { DURATION_EXAMPLE, MAX_SIZE_TEXT, parseDuration, parseSize, parseTimeout, SIZE_EXAMPLE, SizeTooLarge, TIMEOUT_EXAMPLE } from './units.ts';

/** A field whose value `parse` turns into T, or refuses (by returning undefined or throwing) with `expected`. */
export function parsedField<T>(expected: string, parse: (value: unknown) => T | undefined) {
  return z.unknown().transform((value, ctx): T => {
    let out: T | undefined;
    try {
      out = parse(value);
    } catch (err) {
      // Written right but too large: "expected a size like 4M" would send the reader looking for a typo.
      if (err instanceof SizeTooLarge) {
        ctx.addIssue({ code: 'custom', message: `expected ${expected}; this one is too large (at most ${MAX_SIZE_TEXT})` });
        return z.NEVER;
      }
      out = undefined;
    }
    if (out === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
      return z.NEVER;
    }
    return out;
  });
}

/** Bytes: a whole number, or text like "200k", "500G" (binary units). `min` refuses smaller (0 by default). */
/** `why`: the reason for `min`, said with the error (a bound a person cannot guess). */
export function sizeField(options: { min?: number; perSecond?: boolean; why?: string } = {}) {
  const min = options.min ?? 0;
  const example = options.perSecond ? 'a rate like 200k or 1M (bytes per second)' : SIZE_EXAMPLE;
  const bound = min > 0 ? `${example}, at least ${min} byte${min === 1 ? '' : 's'}` : example;
  const expected = options.why === undefined ? bound : `${bound}; ${options.why}`;
  return parsedField(expected, (v) => {
    let bytes: number;
    if (typeof v === 'number') {
      if (Number.isInteger(v) && !Number.isSafeInteger(v)) throw new SizeTooLarge(String(v));
      bytes = v;
    }
    else if (typeof v === 'string') bytes = parseSize(options.perSecond ? v.replace(/\/s$/i, '') : v);
    else return undefined;
    return Number.isSafeInteger(bytes) && bytes >= min ? bytes : undefined;
  });
}

/** Milliseconds, from "90s", "1h", "7d", "1h30m" (a bare number is refused: seconds? days?). */
export function durationField() {
  return parsedField(DURATION_EXAMPLE, (v) => (typeof v === 'string' ? parseDuration(v) : undefined));
}

/** A timeout in milliseconds: a duration of at least 1s (core/units.ts parseTimeout, which the flags use too). */
export function timeoutField() {
  return parsedField(TIMEOUT_EXAMPLE, (v) => (typeof v === 'string' ? parseTimeout(v) : undefined));
}

/**
 * A volume's key: one path component of the alphabet of core/names.ts, short enough for its snapshots' names
 * (core/snapshot-name.ts). A plain string key (not the SafeName brand): config maps are looked up by names from the
 * command line.
 */
export function volumeNameKey() {
  return z.string().superRefine((key, ctx) => {
    if (!isSafeName(key)) ctx.addIssue({ code: 'custom', message: `expected a volume name of ${NAME_RULE}` });
    else if (key.length > MAX_VOLUME_LENGTH) ctx.addIssue({ code: 'custom', message: `expected a volume name of ${VOLUME_LENGTH_RULE}; this one has ${key.length}` });
  });
}

/**
 * An absolute path. Relative ones are refused rather than guessed: under systemd the working directory is /, from
 * a shell it is wherever the admin stood, and the same file must mean the same thing in both.
 */
export function absolutePathField() {
  return parsedField('an absolute path (starting with /)', (v) =>
    typeof v === 'string' && path.isAbsolute(v) && !v.includes('\0') ? path.normalize(v) : undefined,
  );
}

/** An http:// or https:// URL with a host; `parse`: by default the server a client pushes to (core/server-url.ts). */
export function httpUrlField(parse: (value: string) => string = parseServerUrl) {
  // parseServerUrl's own message says the fix (the scheme to add, the one to drop): a config gets the one --server gets.
  return z.unknown().transform((value, ctx): string => {
    if (typeof value !== 'string') {
      ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL, e.g. https://backup.example.net' });
      return z.NEVER;
    }
    try {
      return parse(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
}

/**
 * A map of named entries (volumes) whose names follow KEY. zod's record does not look at an entry's value when its
 * key is refused, so a bad name hid every mistake inside that entry until the name was fixed: here the names are
 * checked beside the values, each entry's value is validated whatever its name, and the file's mistakes come in one
 * report.
 */
export function namedEntries<V extends z.ZodType>(key: z.ZodType<string>, value: V) {
  return z.record(z.string(), value).superRefine(
    (entries, ctx) => {
      for (const name of Object.keys(entries)) {
        const checked = key.safeParse(name);
        if (!checked.success) ctx.addIssue({ code: 'invalid_key', origin: 'record', issues: checked.error.issues, input: name, path: [name] });
      }
    },
    // By default a check is skipped once a value had an issue: that was the hiding.
    { when: (payload) => isMapValue(payload.value) },
  );
}

/**
 * A `when` for a check across fields: run it once those FIELDS parsed, whatever else in the map did not, so that
 * it is reported beside the other mistakes instead of in a second round after they are fixed.
 */
export function whenParsed(...fields: string[]) {
  return (payload: { value: unknown; issues: readonly { path?: readonly PropertyKey[] | undefined }[] }): boolean =>
    isMapValue(payload.value) && !payload.issues.some((issue) => fields.includes(String(issue.path?.[0])));
}

function isMapValue(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
