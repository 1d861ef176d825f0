// Waiting assertions over Playwright locators (playwright-core ships no `expect`): each one polls
// the page until the condition holds or the deadline passes, then fails with what it last saw.
import type { Locator } from 'playwright-core';

const DEFAULT_TIMEOUT = 30_000;

export async function until<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = DEFAULT_TIMEOUT,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (ok(last)) return last;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const seen = lastError !== undefined ? `error: ${String(lastError)}` : `last: ${JSON.stringify(last)}`;
      throw new Error(`Timed out after ${timeoutMs / 1000} s waiting for ${what} (${seen})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const matches = (text: string, want: string | RegExp) =>
  typeof want === 'string' ? text.includes(want) : want.test(text);

export async function visible(loc: Locator, timeout = DEFAULT_TIMEOUT): Promise<void> {
  await loc.first().waitFor({ state: 'visible', timeout });
}

export async function hidden(loc: Locator, timeout = DEFAULT_TIMEOUT): Promise<void> {
  await until(
    `${loc} to be hidden`,
    () => loc.first().isVisible(),
    (v) => !v,
    timeout,
  );
}

export async function hasText(loc: Locator, want: string | RegExp, timeout = DEFAULT_TIMEOUT): Promise<void> {
  await until(
    `${loc} to contain ${String(want)}`,
    () => loc.first().innerText({ timeout: 1000 }),
    (t) => matches(t, want),
    timeout,
  );
}

export async function exactText(loc: Locator, want: string, timeout = DEFAULT_TIMEOUT): Promise<void> {
  await until(
    `${loc} to read "${want}"`,
    async () => (await loc.first().innerText({ timeout: 1000 })).trim(),
    (t) => t === want,
    timeout,
  );
}

export async function hasValue(loc: Locator, want: string, timeout = DEFAULT_TIMEOUT): Promise<void> {
  await until(
    `${loc} to have value "${want}"`,
    () => loc.first().inputValue({ timeout: 1000 }),
    (v) => v === want,
    timeout,
  );
}

export async function hasAttr(
  loc: Locator,
  name: string,
  want: string | RegExp | null,
  timeout = DEFAULT_TIMEOUT,
): Promise<void> {
  await until(
    `${loc} to have ${name}=${String(want)}`,
    () => loc.first().getAttribute(name, { timeout: 1000 }),
    (v) => (want === null ? v === null : v !== null && matches(v, want)),
    timeout,
  );
}

export async function count(loc: Locator, n: number, timeout = DEFAULT_TIMEOUT): Promise<void> {
  await until(
    `${loc} to match ${n} elements`,
    () => loc.count(),
    (c) => c === n,
    timeout,
  );
}

export async function enabled(loc: Locator, timeout = DEFAULT_TIMEOUT): Promise<void> {
  await until(
    `${loc} to be enabled`,
    () => loc.first().isEnabled({ timeout: 1000 }),
    (v) => v,
    timeout,
  );
}

export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}
