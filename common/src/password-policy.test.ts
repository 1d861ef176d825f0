import { expect, it } from 'vitest';
import { checkPassword } from './password-policy.ts';

it.each([
  ['Secret123', true, []],
  ['secret123', false, ['upper']],
  ['SECRET123', false, ['lower']],
  ['SecretPwd', false, ['digit']],
  ['Se1', false, ['length']],
  ['', false, ['length', 'upper', 'lower', 'digit']],
])('%s → ok=%s, unmet %j', (pw, ok, unmet) => {
  const r = checkPassword(pw);
  expect(r.ok).toBe(ok);
  expect(r.rules.filter((x) => !x.met).map((x) => x.id)).toEqual(unmet);
});
