/**
 * @tus/server's own refusals as our typed errors, and every answer it writes made like the rest of the API's (README:
 * every error is `{"error": {...}}` with its code in `snapferry-error-code`). tus says no in two ways: it throws one
 * of its ERRORS from a handler (onResponseError in tus-server.ts sees those and asks `thrownByTus` by the error's
 * name, since only the adapter imports @tus/*), or, for a missing or malformed header, it writes a text answer before
 * any handler or hook runs (`tusAnswer` knows those by their text). Statuses come from the codes, in
 * server/http-errors.ts.
 */
import { SnapferryError } from '../../core/errors.ts';
import { ERROR_CODE_HEADER, ErrorBody } from '../../core/protocol.ts';
import { errorAnswer, errorBody, statusOf } from '../http-errors.ts';

const refusal = (code: string, message: string, retryable = false) => new SnapferryError(code, message, { retryable });

/** The code of a PATCH the line cut (tus's ABORTED): an interruption of the upload, not a refusal. */
const REQUEST_CUT = 'request_cut';

const VERSION_REQUIRED = () => refusal('tus_version_required',
  'this server speaks tus 1.0.0: send "Tus-Resumable: 1.0.0" with every upload request but OPTIONS');

/** The request's headers, read to say what exactly is wrong with them (tus says only which rule broke). */
export interface RequestHeaders {
  get(name: string): string | null;
}

const NO_HEADERS: RequestHeaders = { get: () => null };

/** The refusal of each malformed header @tus/server checks (its HeaderValidator), by the header's lowercase name. */
const INVALID_HEADER: Record<string, (headers: RequestHeaders) => SnapferryError> = {
  'tus-resumable': VERSION_REQUIRED,
  'upload-offset': () => refusal('invalid_upload_offset',
    'Upload-Offset must be a whole number of bytes, 0 or more, in plain digits: the offset a HEAD on the upload answers'),
  'upload-length': (headers) => {
    // Plain digits past 2^53 - 1 are written right and only too large: tus's check refuses them alike.
    const given = headers.get('upload-length')?.trim() ?? '';
    if (/^\d+$/.test(given) && !Number.isSafeInteger(Number(given))) {
      return refusal('invalid_upload_length', `Upload-Length ${given} is too large: an upload holds at most ${Number.MAX_SAFE_INTEGER} bytes (2^53 - 1)`);
    }
    return refusal('invalid_upload_length',
      'Upload-Length must be a whole number of bytes, 0 or more, in plain digits; to give no length, send Upload-Defer-Length: 1 instead');
  },
  'upload-defer-length': () => refusal('invalid_upload_defer_length',
    'Upload-Defer-Length, when sent, must be 1; or send Upload-Length instead'),
  'upload-metadata': () => refusal('invalid_upload_metadata',
    'Upload-Metadata must be comma-separated "key base64-value" pairs, each key once (tus 1.0.0, creation); a push sends volume, snapshot, uuid, format and chunkSize'),
  'content-type': () => refusal('invalid_content_type', 'a PATCH body must be sent as Content-Type: application/offset+octet-stream'),
};

/**
 * What each of the ERRORS @tus/server throws means here: a code, a reason and what to do next, where tus would answer
 * a bare text (and MISSING_OFFSET and INVALID_CONTENT_TYPE a 403, which says "your token may not" to an HTTP client).
 */
const THROWN = new Map<string, (method: string, headers: RequestHeaders) => SnapferryError>([
  ['INVALID_OFFSET', () => refusal('offset_mismatch',
    "the request's Upload-Offset is not where the upload stands (a request before it was cut); the client asks the server's offset and goes on from there",
    true)],
  // tus throws ABORTED both when the request's body broke off and when a newer request took the upload's lock (the
  // client reconnected after a cut it saw first): a cut of the line either way, and no refusal of anything sent.
  ['ABORTED', () => refusal(REQUEST_CUT,
    "this request's body broke off, or a newer request on this upload took its place (the client reconnected); what arrived is kept, and the upload goes on from its offset", true)],
  ['ERR_LOCK_TIMEOUT', () => refusal('transfer_locked',
    'an earlier request on this upload is still being finished (a cut the server is still taking apart); the client tries again shortly', true)],
  ['MISSING_OFFSET', () => refusal('upload_offset_required',
    'a PATCH must say where its body goes: send Upload-Offset, the offset a HEAD on the upload answers')],
  ['INVALID_CONTENT_TYPE', (_method, headers) => INVALID_HEADER['content-type']!(headers)],
  // A creation without a length is refused for lacking one; a PATCH's length is refused for what it says.
  // tus refuses a creation with both as it does one with neither: which one it was, the headers say.
  ['INVALID_LENGTH', (method, headers) => method === 'POST'
    ? headers.get('upload-length') !== null && headers.get('upload-defer-length') !== null
      ? refusal('invalid_upload_length', "a creation sends Upload-Length (the upload's bytes) or Upload-Defer-Length: 1, not both; a push sends only Upload-Defer-Length: 1")
      : refusal('upload_length_required', "a creation must send Upload-Length (the upload's bytes) or Upload-Defer-Length: 1 (a push defers it: its end frame fixes the length)")
    : refusal('invalid_upload_length', "this PATCH's Upload-Length is refused: the upload's length is fixed already, or it is below the bytes the upload holds; send the PATCH without it")],
  ['ERR_SIZE_EXCEEDED', () => refusal('upload_size_exceeded', "the body goes past the upload's length: send at most its length minus Upload-Offset")],
  ['ERR_MAX_SIZE_EXCEEDED', () => refusal('upload_size_exceeded', 'the upload is longer than this server takes')],
  ['FILE_NOT_FOUND', () => refusal('transfer_not_found',
    'this client has no upload at this URL (aborted, expired or never created): start a new upload')],
  ['FILE_NO_LONGER_EXISTS', () => refusal('upload_expired', 'this upload expired: nothing was sent for too long; start a new upload')],
  ['UNSUPPORTED_CONCATENATION_EXTENSION', () => refusal('tus_extension_unsupported',
    'this server does not take tus concatenation (Upload-Concat): send the upload as one, its PATCHes one after another')],
]);

/**
 * The code the server refused a tus request's answer `res` with, or null when it refused nothing: a success, or a
 * request the line cut (REQUEST_CUT: what `status` calls a cut, not a refusal). `res` has passed through tusAnswer.
 */
export function refusalOf(res: Response): string | null {
  const code = res.status >= 400 ? res.headers.get(ERROR_CODE_HEADER) : null;
  return code === REQUEST_CUT ? null : code;
}

/** Whether `code` is a request the line cut (tus's ABORTED), which refused nothing. */
export function isRequestCut(code: string): boolean {
  return code === REQUEST_CUT;
}

/** The typed error of the one of @tus/server's ERRORS named `name` (for `method`'s request), or undefined. */
export function thrownByTus(name: string, method: string, headers: RequestHeaders): SnapferryError | undefined {
  return THROWN.get(name)?.(method, headers);
}

/**
 * Every answer of @tus/server, the one place it passes on its way out: no CORS headers (no browser is meant to reach
 * this server, and tus grants every origin by default), and an error answer is our JSON with our headers whatever tus
 * wrote. A body tus wrote as text is one of its own refusals: known by its text, since tus gives nothing else.
 */
export async function tusAnswer(res: Response, request: RequestHeaders = NO_HEADERS): Promise<Response> {
  const headers = new Headers(res.headers);
  for (const name of [...headers.keys()]) if (name.startsWith('access-control-')) headers.delete(name);
  if (res.status < 400) return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  const text = await res.text();
  const ours = ErrorBody.safeParse(safeJson(text));
  if (ours.success) return errorAnswer(ours.data, res.status, headers);
  const err = writtenByTus(res.status, text, request);
  const body = errorBody(err);
  // tus 1.0.0: a 412 for the protocol's version names the versions the server speaks.
  if (body.error.code === 'tus_version_required') headers.set('Tus-Version', '1.0.0');
  return errorAnswer(body, statusOf(err), headers);
}

function writtenByTus(status: number, text: string, headers: RequestHeaders): Error {
  const said = text.trim();
  if (status === 412) return VERSION_REQUIRED();
  const invalid = /^Invalid (.+)$/.exec(said);
  if (status === 400 && invalid) {
    const names = invalid[1]!.split(' ');
    const known = INVALID_HEADER[names[0]!.toLowerCase()];
    return known?.(headers) ?? refusal('invalid_header', `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} not as tus 1.0.0 defines ${names.length > 1 ? 'them' : 'it'}: correct or drop ${names.length > 1 ? 'them' : 'it'}`);
  }
  // tus's answer to a method it has no handler for.
  if (status === 404 && said === 'Not found') return refusal('method_not_allowed', 'the upload endpoints take POST, HEAD, PATCH, DELETE and OPTIONS');
  // Not the client's to fix: answered as any other fault of the server's.
  if (status >= 500) return new Error(`@tus/server answered ${status}: ${said}`);
  return refusal('invalid_request', `the upload endpoint refused this request (${status}): ${said || 'no reason given'}`);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
