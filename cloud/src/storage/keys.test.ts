import { newId } from '@atelier/common';
import { describe, expect, it } from 'vitest';
import { imageObjectKey, thumbObjectKey, userPrefix } from './keys.ts';

describe('storage keys', () => {
  const user = '3f1c2a4e-7b9d-4c1e-9a2b-1234567890ab';
  const img = newId('img');

  it('puts every object of a user under users/{userId}/', () => {
    expect(imageObjectKey(user, img)).toBe(`users/${user}/images/${img}.png`);
    expect(thumbObjectKey(user, img, 'image/webp')).toBe(`users/${user}/thumbs/${img}.webp`);
    expect(thumbObjectKey(user, img, 'image/png')).toBe(`users/${user}/thumbs/${img}.png`);
    expect(imageObjectKey(user, img).startsWith(userPrefix(user))).toBe(true);
  });

  it.each(['', '../other', 'a/b', 'a b', '..', 'user\u0000', 'üser', `${'a'.repeat(129)}`])(
    'refuses a user id that could change the key shape: %j',
    (bad) => {
      expect(() => imageObjectKey(bad, img)).toThrow(TypeError);
    },
  );

  it.each(['img_../../x', 'brd_01HX0000000000000000000', 'img_short', `${img}/x`])(
    'refuses an image id the server did not mint: %j',
    (bad) => {
      expect(() => imageObjectKey(user, bad as typeof img)).toThrow(TypeError);
    },
  );
});
