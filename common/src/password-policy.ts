/** The Cognito pool's password policy, checked as the user types. Kept in step with cloud/stack. */
export const PASSWORD_RULES = [
  { id: 'length', label: 'At least 8 characters', test: (p: string) => p.length >= 8 },
  { id: 'upper', label: 'An upper-case letter', test: (p: string) => /[A-Z]/.test(p) },
  { id: 'lower', label: 'A lower-case letter', test: (p: string) => /[a-z]/.test(p) },
  { id: 'digit', label: 'A digit', test: (p: string) => /[0-9]/.test(p) },
] as const;

export function checkPassword(password: string): { ok: boolean; rules: { id: string; label: string; met: boolean }[] } {
  const rules = PASSWORD_RULES.map((r) => ({ id: r.id, label: r.label, met: r.test(password) }));
  return { ok: rules.every((r) => r.met), rules };
}
