/**
 * zod's issues in words for the person editing a config file: what the key expects, in the file's terms (a map, a
 * list, text), and for an unknown key, which keys that place does take (most unknown keys are typos).
 */
import type { z } from 'zod';

export type Segment = string | number;

const TYPE_WORDS: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a map of settings',
  record: 'a map',
  array: 'a list',
};

/** "expected ..." (or "unknown key ...") for one issue; the caller adds what was found. */
export function describeIssue(issue: z.core.$ZodIssue, schema: z.ZodType, path: readonly Segment[]): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => String(v)).join(', ')}`;
    case 'too_small':
      return issue.origin === 'number'
        ? `expected a number ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`
        : `expected at least ${String(issue.minimum)} ${issue.origin === 'string' ? 'characters' : 'items'}`;
    case 'too_big':
      return issue.origin === 'number'
        ? `expected a number ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`
        : `expected at most ${String(issue.maximum)} ${issue.origin === 'string' ? 'characters' : 'items'}`;
    case 'unrecognized_keys': {
      const known = keysAt(schema, path);
      return known && known.length > 0 ? `unknown key; the keys here are ${known.join(', ')}` : 'unknown key';
    }
    case 'invalid_key':
      // A record's key (a volume name) broke its own rule; the inner issue says which.
      return issue.issues[0]?.message ?? issue.message;
    default:
      // Our own fields (sizes, durations, paths, URLs) already say "expected ...".
      return issue.message;
  }
}

/** A value as a person wrote it in the file, for "found ...". */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the key is missing)';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  return String(value);
}

/** `limits.quota`, `volumes.laptop/home.retention`; a key with a dot in it is quoted so the path stays readable. */
export function formatPath(path: readonly Segment[]): string {
  return path
    .map((seg, i) => {
      if (typeof seg === 'number') return `[${seg}]`;
      const shown = /^[^.\s[\]"]+$/.test(seg) ? seg : JSON.stringify(seg);
      return i === 0 ? shown : `.${shown}`;
    })
    .join('');
}

interface SchemaDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  element?: z.ZodType;
}

function defOf(schema: z.ZodType): SchemaDef {
  return (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
}

/** Through optional, default and transform wrappers to the schema that gives the value its shape. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    const next = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
    if (next === undefined) return s;
    s = next;
  }
}

/** The keys an object schema takes at PATH, or null where the path does not lead to one. */
export function keysAt(schema: z.ZodType, path: readonly Segment[]): string[] | null {
  let s = unwrap(schema);
  for (const seg of path) {
    const def = defOf(s);
    const next = def.type === 'object' ? def.shape?.[String(seg)] : def.type === 'record' ? def.valueType : def.type === 'array' ? def.element : undefined;
    if (next === undefined) return null;
    s = unwrap(next);
  }
  const def = defOf(s);
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : null;
}
