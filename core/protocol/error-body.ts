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
