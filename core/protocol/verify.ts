/**
 * Verify (issue 18): the server digests its copy of one snapshot (core/tree-digest/) in a job, and then answers the
 * client's questions about it: the summary, the children of directories, the records of paths. Only digests cross the
 * line, in bounded batches; the client descends only where digests differ (core/tree-digest/types.ts has the contract).
 */
import { z } from 'zod';
import { ENTRY_KINDS } from '../tree-digest/types.ts';

/**
 * Bounds of one verify request and its answer. A request over them is refused (400 invalid_input) before any of it
 * is looked at; an answer stops at maxEntriesPerAnswer children and says where to go on (ChildrenAnswer).
 */
export const VERIFY_LIMITS = {
  /** Directories or paths named in one request. */
  maxPathsPerRequest: 1000,
  /** One path: a Linux path is at most 4096 bytes, and each byte spelled %XX is 3 characters. */
  maxPathLength: 3 * 4096,
  /** A request's body. */
  maxBodyBytes: 1024 * 1024,
  /** Child digests in one answer, over all the directories it covers. */
  maxEntriesPerAnswer: 5000,
} as const;

export const verifyStates = ['digesting', 'ready', 'failed'] as const;
export type VerifyState = (typeof verifyStates)[number];

/** The body of POST /v1/verify; an admin token names the client with ?client=NAME, as a restore does. */
export const VerifyStart = z.strictObject({
  volume: z.string(),
  snapshot: z.string(),
  /** Recompute every file's content from the disk instead of reusing a saved digest (to catch bit rot). */
  readData: z.boolean().default(false),
});
export type VerifyStart = z.input<typeof VerifyStart>;
export const VERIFY_QUERY = { client: 'client' } as const;

const hex = z.string().regex(/^[0-9a-f]+$/);
const TreePathField = z.string().max(VERIFY_LIMITS.maxPathLength);

export const TreeSummarySchema = z.object({ digest: hex, entries: z.number().int().nonnegative(), bytes: z.string().regex(/^\d+$/) });
export const ChildDigestSchema = z.object({ name: z.string(), kind: z.enum(ENTRY_KINDS), digest: hex });
export const EntryRecordSchema = z.object({
  kind: z.enum(ENTRY_KINDS),
  mode: z.number().int(),
  uid: z.number().int(),
  gid: z.number().int(),
  size: z.string().nullable(),
  mtime: z.string().nullable(),
  rdev: z.string().nullable(),
  target: z.string().nullable(),
  xattrs: z.string().nullable(),
  content: z.string().nullable(),
  link: z.string().nullable(),
});

export const VerifyJob = z.object({
  /**
   * This start's hold on the job: each start has its own, also one that joined a job already there, and the requests
   * name it. DELETE releases it, by the caller that started it only, and once (then it is not found).
   */
  id: z.string(),
  /** Whose snapshot: in an admin's answers only. */
  client: z.string().optional(),
  volume: z.string(),
  snapshot: z.string(),
  readData: z.boolean(),
  state: z.enum(verifyStates),
  /** Bytes of file content hashed or reused so far, and the total when known (the parent's or the catalog's figure). */
  progress: z.object({ bytes: z.number(), total: z.number().nullable(), entries: z.number() }),
  /** The server's digest, once ready. */
  summary: TreeSummarySchema.nullable(),
  /** Which saved digest the server started from: 'self' (this snapshot's), 'parent', or null (none, or readData). */
  reused: z.enum(['self', 'parent']).nullable(),
  error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }).nullable(),
});
export type VerifyJob = z.infer<typeof VerifyJob>;

/** `after`: go on with the children after this name (the answer before stopped inside this directory). */
export const ChildrenRequest = z.strictObject({
  dirs: z.array(z.strictObject({ path: TreePathField, after: z.string().max(VERIFY_LIMITS.maxPathLength).optional() })).max(VERIFY_LIMITS.maxPathsPerRequest),
});
export type ChildrenRequest = z.infer<typeof ChildrenRequest>;

/**
 * The directories answered, in the order asked, until the answer holds maxEntriesPerAnswer children: `complete`
 * false means the directory's list goes on (ask again with `after` its last name); a directory asked for and in
 * neither `children` nor `notDirectories` was not reached, ask again. `notDirectories`: not a directory of the tree.
 */
export const ChildrenAnswer = z.object({
  children: z.array(z.object({ path: z.string(), entries: z.array(ChildDigestSchema), complete: z.boolean() })),
  notDirectories: z.array(z.string()),
});
export type ChildrenAnswer = z.infer<typeof ChildrenAnswer>;

export const RecordsRequest = z.strictObject({ paths: z.array(TreePathField).max(VERIFY_LIMITS.maxPathsPerRequest) });
export type RecordsRequest = z.infer<typeof RecordsRequest>;

/** The record of each path asked for that the tree holds; a path left out is not in the tree. */
export const RecordsAnswer = z.object({ records: z.array(z.object({ path: z.string(), record: EntryRecordSchema })) });
export type RecordsAnswer = z.infer<typeof RecordsAnswer>;
