/**
 * Names as text (types.ts): a file name is any bytes but '/' and NUL, and must cross the line as JSON text with
 * exactly one spelling. Valid, printable UTF-8 stays as it is; '%' and every other byte (control characters,
 * invalid or overlong UTF-8, surrogates) is written %XX in upper-case hex. Printable here means not a control
 * character (C0, DEL, C1): those are what breaks a terminal or a log line.
 */

/** The one spelling of a name's (or a symlink target's) bytes. */
export function spellBytes(bytes: Uint8Array): string {
  let out = '';
  let plainStart = 0;
  let i = 0;
  const flushPlain = (end: number): void => {
    if (end > plainStart) out += Buffer.from(bytes.buffer, bytes.byteOffset + plainStart, end - plainStart).toString('utf8');
  };
  while (i < bytes.length) {
    const length = printableSequenceAt(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    flushPlain(i);
    out += '%' + (bytes[i] as number).toString(16).toUpperCase().padStart(2, '0');
    i += 1;
    plainStart = i;
  }
  flushPlain(i);
  return out;
}

/** The bytes a spelling stands for; throws on a spelling that spellBytes would never write. */
export function unspell(spelled: string): Buffer {
  const parts: Buffer[] = [];
  let plainStart = 0;
  for (let i = 0; i < spelled.length; i++) {
    if (spelled[i] !== '%') continue;
    parts.push(Buffer.from(spelled.slice(plainStart, i), 'utf8'));
    const hex = spelled.slice(i + 1, i + 3);
    if (!/^[0-9A-F]{2}$/.test(hex)) throw new RangeError(`not a spelled name: bad escape at ${i} in ${JSON.stringify(spelled)}`);
    parts.push(Buffer.of(parseInt(hex, 16)));
    i += 2;
    plainStart = i + 1;
  }
  parts.push(Buffer.from(spelled.slice(plainStart), 'utf8'));
  const bytes = Buffer.concat(parts);
  if (spellBytes(bytes) !== spelled) throw new RangeError(`not the one spelling of its bytes: ${JSON.stringify(spelled)}`);
  return bytes;
}

/**
 * Length of the printable UTF-8 sequence at `i` that is not '%', or 0. Strict UTF-8 (RFC 3629): no overlong forms,
 * no surrogates, nothing above U+10FFFF.
 */
function printableSequenceAt(b: Uint8Array, i: number): number {
  const b0 = b[i] as number;
  if (b0 < 0x80) return b0 >= 0x20 && b0 !== 0x7f && b0 !== 0x25 ? 1 : 0;
  let length: number;
  let codePoint: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [length, codePoint, min] = [2, b0 & 0x1f, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [length, codePoint, min] = [3, b0 & 0x0f, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [length, codePoint, min] = [4, b0 & 0x07, 0x10000];
  else return 0;
  if (i + length > b.length) return 0;
  for (let k = 1; k < length; k++) {
    const c = b[i + k] as number;
    if ((c & 0xc0) !== 0x80) return 0;
    codePoint = (codePoint << 6) | (c & 0x3f);
  }
  if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return 0;
  // C1 controls (U+0080..U+009F) are as unprintable as C0.
  if (codePoint <= 0x9f) return 0;
  return length;
}
