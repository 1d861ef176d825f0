import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClipTokenizer, normalizeText } from './clip-tokenizer.ts';

const native = path.resolve(import.meta.dirname, '../..');
const cases = JSON.parse(readFileSync(path.join(native, 'test/fixtures/clip-cases.json'), 'utf8')) as {
  cases: { text: string; ids_unpadded: number[] }[];
};

describe('CLIP tokenizer on the real vocabulary', () => {
  const tok = ClipTokenizer.fromDir(path.join(native, 'fixtures/clip'));

  it.each(cases.cases.map((c) => [c.text, c.ids_unpadded] as const))('matches openai/CLIP for %j', (text, expected) => {
    const ids = [tok.bosId, ...tok.encodeText(text), tok.eosId];
    expect(ids).toEqual(expected);
  });

  it('truncates to 77 keeping the end token, and pads with <|endoftext|> by default', () => {
    const long = tok.encode('a '.repeat(100));
    expect(long.length).toBe(77);
    expect(long[0]).toBe(49406);
    expect(long[76]).toBe(49407);
    expect(long[75]).toBe(320);
    const short = tok.encode('a photo of a cat');
    expect([...short.slice(0, 7)]).toEqual([49406, 320, 1125, 539, 320, 2368, 49407]);
    expect([...short.slice(7)]).toEqual(new Array(70).fill(49407));
  });

  it('pads with the configured pad token ("!" for SD 2.x / Turbo)', () => {
    const vocab = JSON.parse(readFileSync(path.join(native, 'fixtures/clip/vocab.json'), 'utf8')) as Record<
      string,
      number
    >;
    const merges = readFileSync(path.join(native, 'fixtures/clip/merges.txt'), 'utf8').split('\n').slice(1, 48895);
    const t = new ClipTokenizer({ vocab, merges, padToken: '!' });
    const ids = t.encode('cat');
    expect([...ids.slice(0, 4)]).toEqual([49406, 2368, 49407, 0]);
    expect(ids[76]).toBe(0);
  });
});

describe('CLIP tokenizer on a hand-checkable vocabulary', () => {
  // Bytes a, b, c map to themselves; merges in priority order.
  const vocab: Record<string, number> = {
    a: 0,
    b: 1,
    c: 2,
    'a</w>': 3,
    'b</w>': 4,
    'c</w>': 5,
    ab: 6,
    'ab</w>': 7,
    'abc</w>': 8,
    'bc</w>': 9,
    '!</w>': 10,
    '<|startoftext|>': 11,
    '<|endoftext|>': 12,
  };
  const tok = new ClipTokenizer({ vocab, merges: ['a b', 'ab c</w>', 'b c</w>', 'a b</w>'], maxLength: 8 });

  it('applies merges by rank, marking the word end', () => {
    expect(tok.encodeText('abc')).toEqual([8]); // a b → ab, then ab c</w> → abc</w>
    expect(tok.encodeText('bc')).toEqual([9]);
    expect(tok.encodeText('ab')).toEqual([7]); // "a b</w>" (rank 3) is the only pair
    expect(tok.encodeText('ababc')).toEqual([6, 8]); // every "a b" merges first
    expect(tok.encodeText('cab')).toEqual([2, 7]);
    expect(tok.encodeText('ABC!')).toEqual([8, 10]); // lower-cased; punctuation is its own word
  });

  it('adds start/end, pads and truncates to maxLength', () => {
    expect([...tok.encode('abc bc')]).toEqual([11, 8, 9, 12, 12, 12, 12, 12]);
    expect([...tok.encode('a b c a b c a b c')]).toEqual([11, 3, 4, 5, 3, 4, 5, 12]);
  });

  it('fails loudly on a token missing from the vocabulary', () => {
    expect(() => tok.encodeText('d')).toThrow(/not in the vocabulary/);
  });
});

describe('normalizeText', () => {
  it('unescapes HTML twice, collapses whitespace and lower-cases', () => {
    expect(normalizeText('  Hello\t\n  WORLD  ')).toBe('hello world');
    expect(normalizeText('&amp;lt;b&amp;gt; &#65;&#x42;')).toBe('<b> ab');
    expect(normalizeText('fish &amp chips &bogus;')).toBe('fish & chips &bogus;');
    expect(normalizeText('a\u3000b\u00a0c')).toBe('a b c');
  });
});
