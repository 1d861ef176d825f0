// How this project starts Debian's Chromium headless (e2e and the desktop benches share it).
// Without the background-networking flags Chromium keeps dialling hosts this closed network refuses.
import { existsSync } from 'node:fs';

export const CHROMIUM_PATH = process.env.CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Throws a message saying how to install Chromium when it is missing. */
export function requireChromium(): string {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install -y chromium\` (.ci/run does).`,
    );
  return CHROMIUM_PATH;
}
