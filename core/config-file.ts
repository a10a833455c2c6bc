/**
 * The one loader of config files, for both sides: read the file, parse YAML, validate with a zod schema, freeze.
 * Every problem comes back at once, as a compiler would print it (`FILE:LINE: key.path: expected ..., found ...`),
 * so an admin fixes a file in one pass and an editor can jump to each line. The YAML library keeps each node's
 * source range, which is how a zod issue's path becomes a line number.
 */
import fs from 'node:fs/promises';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { SnapferryError } from './errors.ts';
import { describeIssue, describeValue, formatPath, type Segment } from './config-issues.ts';

export interface ConfigProblem {
  line: number;
  /** Only for YAML syntax errors, where the column matters. */
  column?: number;
  /** The dotted key path ("limits.quota"); empty for the file as a whole. */
  path: string;
  message: string;
}

/** A config file that does not parse or does not validate. Fixing the file is the only cure: not retryable. */
export class ConfigError extends SnapferryError {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => {
      const where = p.column === undefined ? `${file}:${p.line}` : `${file}:${p.line}:${p.column}`;
      return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
    });
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super('config_invalid', `the config file ${file} is not valid (${count}):\n${lines.join('\n')}`, {
      details: { file, problems },
    });
    this.file = file;
    this.problems = problems;
  }
}

export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends readonly (infer E)[]
    ? readonly DeepReadonly<E>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/** Reads, parses, validates and freezes FILE; throws ConfigError listing every problem, with its line. */
export async function loadConfigFile<S extends z.ZodType>(file: string, schema: S): Promise<DeepReadonly<z.output<S>>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new SnapferryError('config_unreadable', unreadableMessage(file, err), { cause: err, details: { file, errno: (err as NodeJS.ErrnoException).code ?? null } });
  }
  return parseConfigText(file, text, schema);
}

/**
 * Why FILE could not be read, and what to do, for the person who gave --config: the bare errno line (`ENOENT: no such
 * file or directory, open ...`) said neither. A config the command cannot read is the user's to fix, as one that does
 * not validate: no retry reads it.
 */
export function unreadableMessage(file: string, err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return `the config file ${file} does not exist: check the path given with --config`;
    case 'ENOTDIR':
      return `the config file ${file} does not exist (a part of its path is not a folder): give the path of an existing one with --config`;
    case 'EACCES':
    case 'EPERM':
      return `the config file ${file} cannot be read by this user (permission denied): run the command as a user that may read it (root), or fix the file's mode`;
    case 'EISDIR':
      return `the config file ${file} is a folder, not a file: give the path of the YAML file itself with --config`;
    default:
      return `cannot read the config file ${file}: ${(err as Error).message}; check the path given with --config`;
  }
}

/**
 * The file to load: the one given (--config), else the default path when something is there, else none. A default
 * file that exists but cannot be read is still returned: loading it says why, rather than running without it.
 */
export async function configFileToUse(explicit: string | undefined, defaultPath: string): Promise<string | null> {
  if (explicit !== undefined) return explicit;
  try {
    await fs.access(defaultPath);
    return defaultPath;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : defaultPath;
  }
}

/** The same as loadConfigFile for text already read; `file` only names it in messages. */
export function parseConfigText<S extends z.ZodType>(file: string, text: string, schema: S): DeepReadonly<z.output<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return { line, column: col, path: '', message: e.message };
      }),
    );
  }
  let data: unknown;
  try {
    // An empty file is an empty map, so that a missing required key is reported by name.
    data = doc.toJS() ?? {};
  } catch (err) {
    // toJS throws for an alias whose anchor is missing (or for an alias bomb), without a position: find the alias.
    let offset = 0;
    visit(doc, {
      Alias(_, node) {
        if (node.resolve(doc) !== undefined) return undefined;
        offset = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    const { line, col } = lineCounter.linePos(offset);
    throw new ConfigError(file, [{ line, column: col, path: '', message: (err as Error).message }]);
  }
  const result = schema.safeParse(data);
  if (result.success) return deepFreeze(result.data) as DeepReadonly<z.output<S>>;

  const lineOf = (path: readonly Segment[]) => lineCounter.linePos(offsetOf(doc, path)).line;
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path as Segment[];
    if (issue.code === 'unrecognized_keys') {
      // One problem per unknown key, each at its own line.
      for (const key of issue.keys) {
        problems.push({ line: lineOf([...path, key]), path: formatPath([...path, key]), message: describeIssue(issue, schema, path) });
      }
      continue;
    }
    const found = issue.code === 'invalid_key' ? String(path.at(-1)) : describeValue(valueAt(data, path));
    problems.push({ line: lineOf(path), path: formatPath(path), message: `${describeIssue(issue, schema, path)}, found ${found}` });
  }
  problems.sort((a, b) => a.line - b.line);
  throw new ConfigError(file, problems);
}

function valueAt(data: unknown, path: readonly Segment[]): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/**
 * Where PATH starts in the source: the key of a map entry (its line is the one a person reads as "the setting"),
 * an item of a list, or, for a key that is missing, the key of the map that should hold it.
 */
function offsetOf(doc: Document, path: readonly Segment[]): number {
  let node: unknown = doc.contents;
  let offset = 0;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
      node = node.items[seg];
      offset = (node as Node).range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
