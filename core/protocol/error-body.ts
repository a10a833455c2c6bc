/** How the server says no: the JSON body of every error answer, and its code in a header for answers without a body. */
import { z } from 'zod';

/**
 * On every error answer, the error's code (ErrorBody's `code`): a HEAD's answer has no body, and tus clients ask
 * for the offset with HEAD, so without it a refused HEAD says nothing of why.
 */
export const ERROR_CODE_HEADER = 'snapferry-error-code';

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    retryable: z.boolean().default(false),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/**
 * Codes of a server fault that only its admin can mend: the archive's stored objects damaged or written by a newer
 * snapferry. The client takes any other 5xx for one that may heal (a restart, a bucket slow for a moment) and tries
 * again, but these come back unchanged on every try: a restore looped on a missing manifest until it was killed.
 */
export const ADMIN_MUST_MEND = new Set(['archive_object_corrupt', 'archive_format_unsupported']);

/** Whether a client may try again after error `e`, answered with `status`: what the server says, and every other 5xx. */
export function retryableAnswer(e: ErrorBody['error'], status: number): boolean {
  return e.retryable || (status >= 500 && !ADMIN_MUST_MEND.has(e.code));
}
