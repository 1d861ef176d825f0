import { describe, expect, it } from 'vitest';
import { CreateBoardBody, ImageListQuery } from './api.ts';
import { GenerateRequest } from './generate.ts';
import { hasUnpairedSurrogate, isStorableText } from './text.ts';

describe('storable text', () => {
  it('accepts 4-byte characters, RTL, combining marks and CJK; refuses NUL and lone surrogates', () => {
    for (const ok of ['a lighthouse', '🦊 in snow', 'مرحبا', 'e\u0301', '山水', 'tab\tand\nnewline'])
      expect(isStorableText(ok)).toBe(true);
    for (const bad of ['a\u0000b', '\uD800', 'x\uDC00', '\uDBFF\uDBFF\uDC00'.slice(0, 1), '\uDC00\uD800'])
      expect(isStorableText(bad)).toBe(false);
    expect(hasUnpairedSurrogate('\uD83E\uDD8A')).toBe(false);
  });

  it('the shared schemas refuse them with a field and a message', () => {
    const r = GenerateRequest.safeParse({ prompt: 'a\u0000' });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({ path: ['prompt'], message: 'prompt must not contain NUL characters' });
    expect(GenerateRequest.safeParse({ prompt: 'ok', negativePrompt: '\uD800' }).success).toBe(false);
    expect(CreateBoardBody.safeParse({ name: 'b\u0000' }).success).toBe(false);
    expect(ImageListQuery.safeParse({ q: '\uDC00' }).success).toBe(false);
    expect(GenerateRequest.safeParse({ prompt: '🦊 山' }).success).toBe(true);
  });
});
