/** Names as text (types.ts): readable where they can be, one spelling for every byte string, reversible always. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { spellBytes, unspell } from '../../core/tree-digest/spell.ts';

test('printable UTF-8 stays; %, control characters and bytes that are not UTF-8 are %XX', () => {
  const cases: Array<[Buffer, string]> = [
    [Buffer.from('plain name.txt'), 'plain name.txt'],
    [Buffer.from('ünïcödé-ファイル 🙂'), 'ünïcödé-ファイル 🙂'],
    [Buffer.from('100%'), '100%25'],
    [Buffer.from('a\nb\tc\x7f'), 'a%0Ab%09c%7F'],
    [Buffer.from([0x62, 0xff, 0xc3]), 'b%FF%C3'],
    [Buffer.from([0xc0, 0xaf]), '%C0%AF'], // overlong '/'
    [Buffer.from([0xed, 0xa0, 0x80]), '%ED%A0%80'], // a surrogate
    [Buffer.from([0xc2, 0x85]), '%C2%85'], // C1 control (NEL)
    [Buffer.from('back\\slash'), 'back\\slash'],
  ];
  for (const [bytes, spelled] of cases) {
    assert.equal(spellBytes(bytes), spelled);
    assert.deepEqual(unspell(spelled), bytes);
  }
});

/** C0, DEL and C1. */
function isControl(c: string): boolean {
  const code = c.codePointAt(0) ?? 0;
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

test('every byte string has one spelling, and it reads back', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      const spelled = spellBytes(bytes);
      assert.deepEqual(unspell(spelled), Buffer.from(bytes));
      assert.ok(![...spelled].some(isControl), spelled);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), (text) => {
      const spelled = spellBytes(Buffer.from(text));
      if (![...text].some((c) => c === '%' || isControl(c))) assert.equal(spelled, text);
    }),
  );
});

test('a spelling that spellBytes would not write is refused, so a name cannot be written two ways', () => {
  for (const other of ['%61', '%zz', 'a%2', '%e2%82%ac']) assert.throws(() => unspell(other), RangeError, other);
});
