/**
 * The client's bearer token, from a file (--token-file) or the environment (SNAPFERRY_TOKEN); never from a
 * command-line argument, which every user of the machine can read in `ps`. A token file that others can read is
 * refused, as a key file is (core/crypto/key-file.ts): whoever reads the token is this client to the server.
 */
import { openToOthers, readPrivateFile } from '../../core/private-file.ts';
import { SnapferryError, ValidationError } from '../../core/errors.ts';

/** `token_file_open`: group or others may read or write the token file. */
export class TokenFileError extends SnapferryError {}

export const TOKEN_ENV = 'SNAPFERRY_TOKEN';

/** What an HTTP header value may hold without quoting (RFC 6750 b64token), and what `client add` prints. */
const TOKEN_RE = /^[A-Za-z0-9\-._~+/]+=*$/;

export interface TokenSource {
  tokenFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** The token, or null when none is configured (a server without tokens then answers as before). */
export async function readToken(source: TokenSource): Promise<string | null> {
  if (source.tokenFile !== undefined) {
    const file = source.tokenFile;
    const { text, mode } = await readPrivateFile(file).catch((err: unknown) => {
      throw new ValidationError(`cannot read the token file ${file}: ${(err as Error).message}`, { cause: err });
    });
    const shown = openToOthers(mode);
    if (shown !== null) {
      throw new TokenFileError('token_file_open', `the token file ${file} is open to others (mode ${shown}), and whoever reads it can act as this client on the server: chmod 600 ${file}`, {
        details: { path: file, mode: shown },
      });
    }
    return checked(text.trim(), `the token file ${file}`);
  }
  const fromEnv = (source.env ?? process.env)[TOKEN_ENV];
  if (fromEnv === undefined || fromEnv.trim() === '') return null;
  return checked(fromEnv.trim(), TOKEN_ENV);
}

/** The headers that carry the token on every request of the JSON API and of tus. */
export function authHeaders(token: string | null): Record<string, string> {
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

function checked(token: string, where: string): string {
  if (!TOKEN_RE.test(token)) {
    throw new ValidationError(`${where} does not hold a token: it should be the one line \`snapferry client add\` printed`);
  }
  return token;
}
