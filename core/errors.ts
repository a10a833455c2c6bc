/**
 * One error base for the whole project. Every error carries a stable `code` that scripts can match, says whether
 * retrying can help (`retryable`), and keeps its `cause`. HTTP statuses and exit codes are chosen from `code` in one
 * place each (server/http-errors.ts, client/exit-codes.ts), never where the error is thrown.
 */
export interface SnapferryErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  /** Structured facts for logs and JSON bodies (offsets, names, UUIDs); never secrets. */
  details?: Record<string, unknown>;
}

export class SnapferryError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: SnapferryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }

  toJSON(): { code: string; message: string; retryable: boolean; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

/** Input that breaks the rules: a name, a header, a config value. Retrying the same input cannot help. */
export class ValidationError extends SnapferryError {
  constructor(message: string, options: SnapferryErrorOptions = {}) {
    super('invalid_input', message, options);
  }
}

/**
 * The archive's object store (S3) could not be reached or failed: a refused or cut connection, a timeout, a 5xx or a
 * "slow down". Waiting heals it, so it is retryable; the message names the endpoint, never the keys.
 */
export class StoreUnavailable extends SnapferryError {
  constructor(message: string, options: Omit<SnapferryErrorOptions, 'retryable'> = {}) {
    super('store_unavailable', message, { ...options, retryable: true });
  }
}

/**
 * The object store refused this server's credentials or their rights (403). Only the operator can heal it (the
 * store's keys in the server's config, or the bucket's policy), so retrying cannot help.
 */
export class StoreForbidden extends SnapferryError {
  constructor(message: string, options: Omit<SnapferryErrorOptions, 'retryable'> = {}) {
    super('store_forbidden', message, { ...options, retryable: false });
  }
}

/**
 * An archive upload's lease passed to another instance (this one was paused or cut off past its lease) and the
 * write it tried was refused, not made. The client's retry reaches whichever instance holds the upload now.
 */
export class LeaseLost extends SnapferryError {
  constructor(message: string, options: Omit<SnapferryErrorOptions, 'retryable'> = {}) {
    super('lease_lost', message, { ...options, retryable: true });
  }
}

export function isSnapferryError(err: unknown): err is SnapferryError {
  return err instanceof SnapferryError;
}

/** A readable one-liner for any thrown value, for logs and CLI output. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
