/**
 * What client and server agree on over HTTP: routes, tus metadata keys, and the JSON bodies (zod schemas, so the
 * client parses what it receives instead of trusting it, and the server's types cannot drift from the client's).
 * One module per part, in core/protocol/; this index is what both sides import.
 */
export * from './protocol/routes.ts';
export * from './protocol/restore.ts';
export * from './protocol/upload.ts';
export * from './protocol/error-body.ts';
export * from './protocol/transfer.ts';
export * from './protocol/snapshots.ts';
export * from './protocol/status.ts';
export * from './protocol/verify.ts';
